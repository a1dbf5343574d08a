"""The retrieval gate's verdict from its numbers (no pipeline run)."""

from components.retrieval_evaluator import judge

POPULAR = {"recall@10": 0.20}


def test_a_model_clearing_every_floor_is_blessed():
    assert judge({"model": {"recall@10": 0.40}, "most_popular": POPULAR}, 0.0, 1.2) == []


def test_a_model_too_far_below_the_last_blessed_one_is_refused():
    metrics = {"model": {"recall@10": 0.37}, "most_popular": POPULAR, "last_blessed": {"recall@10": 0.40}}
    assert judge(metrics, 0.0, 1.2, max_recall_drop=0.1) == []  # 7.5% below: within a 10% margin
    (reason,) = judge(metrics, 0.0, 1.2, max_recall_drop=0.05)
    assert reason == "recall@10 0.3700 is more than 5% below the last blessed model's 0.4000"


def test_every_failed_floor_is_a_reason():
    metrics = {"model": {"recall@10": 0.21}, "most_popular": POPULAR, "last_blessed": {"recall@10": 0.40}}
    assert len(judge(metrics, 0.3, 1.2, 0.05)) == 3
