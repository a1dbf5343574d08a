"""The report's one-line verdict: pushed or not, and against the model it replaces."""

from runs.summary import verdict


def _record(pushed=True, **retrieval):
    return {"pushed": {"pushed": pushed}, "retrieval": retrieval}


def test_the_verdict_compares_with_the_model_it_replaces():
    line = verdict(_record(model={"recall@10": 0.45}, last_blessed={"recall@10": 0.40}, most_popular={"recall@10": 0.16}))
    assert line == "Pushed: recall@10 0.4500, better than the model it replaces (0.4000, +12.5%) on the same eval owners"
    assert "worse than the model it replaces (0.4600, -2.2%)" in verdict(_record(model={"recall@10": 0.45}, last_blessed={"recall@10": 0.46}))


def test_a_first_model_and_a_refused_one_say_so():
    assert verdict(_record(model={"recall@10": 0.32}, most_popular={"recall@10": 0.16})) == "Pushed: recall@10 0.3200, the first blessed model here, 2.00x most-popular"
    refused = verdict(_record(pushed=False, model={"recall@10": 0.1}, reasons=["recall@10 0.1000 is below 1.2 x most-popular's 0.1600"]))
    assert refused == "Not pushed: recall@10 0.1000 is below 1.2 x most-popular's 0.1600"
