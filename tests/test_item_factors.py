"""Closed-form item factors: their dot product is EASE's ranking; the validation helpers score rows as served."""

import numpy as np
import tensorflow as tf

from models import hybrid, item_factors, validation
from models.baselines import fit_ease


def _data(n_owners=300, n_items=60, seed=0):
    """Owners in 3 taste groups, each hiring mostly within its group."""
    rng = np.random.default_rng(seed)
    owners, items = [], []
    for owner in range(n_owners):
        group = owner % 3
        for item in rng.choice(n_items // 3, size=8, replace=False):
            owners.append(owner)
            items.append(group * (n_items // 3) + item if rng.random() < 0.85 else rng.integers(n_items))
    return np.array(owners), np.array(items), n_owners, n_items


def test_full_rank_factors_rank_unseen_items_exactly_as_dense_ease():
    owners, items, n_owners, n_items = _data()
    ease = fit_ease((owners, items), n_owners, n_items, lam=10.0)
    matrix = item_factors.interactions(owners, items, n_owners, n_items)
    factors = item_factors.factors(item_factors.top_spectrum(matrix, n_items), 10.0)
    histories = [np.unique(items[owners == o]) for o in range(n_owners)]
    low_rank = item_factors.history_queries(factors, histories) @ factors.candidate.T
    dense = ease(np.arange(n_owners))
    for owner, seen in enumerate(histories):
        unseen = np.setdiff1d(np.arange(n_items), seen)
        np.testing.assert_allclose(low_rank[owner, unseen], dense[owner, unseen], rtol=1e-3, atol=1e-4)


def test_factor_rank_is_capped_by_catalog_owners_and_memory():
    assert item_factors.factor_rank(7_000, 5_000) == item_factors.MAX_RANK
    assert item_factors.factor_rank(400, 300) == 300
    assert item_factors.factor_rank(1_000_000, 100_000) == item_factors.MAX_FACTOR_CELLS // 1_000_000


def test_schedule_follows_the_data_size():
    assert validation.schedule(4_000, 2048) == (validation.MIN_BATCH, validation.MAX_EPOCHS)  # small data: many cheap epochs
    batch, epochs = validation.schedule(300_000, 2048)
    assert batch == 2048 and epochs * 300_000 <= validation.ROW_BUDGET and epochs >= 8
    assert validation.schedule(300_000, 2048, max_epochs=2) == (2048, 2)


def test_row_metrics_exclude_history_and_count_the_target_rank():
    embeddings = np.eye(4, dtype=np.float32)
    queries = np.array([[0.9, 0.8, 0.1, 0.0], [0.0, 0.0, 1.0, 0.5]], np.float32)
    # Row 0: item 0 is a past hire, so its target 1 ranks first; row 1: target 3 ranks second.
    metrics = validation.row_metrics(queries, embeddings, np.array([1, 3]), [np.array([0]), np.array([], np.int64)], k=2)
    assert metrics == {"recall@2": 1.0, "ndcg@2": (1.0 + 1.0 / np.log2(3)) / 2}


def test_blend_prefers_the_part_that_predicts_the_rows():
    owners, items, n_owners, n_items = _data(seed=2)
    matrix = item_factors.interactions(owners, items, n_owners, n_items)
    spectrum = item_factors.top_spectrum(matrix, n_items)
    rows = validation.ValidationSet([], lambda ids: ids)
    rows.targets = items[:200]
    rows.histories = [np.setdiff1d(items[owners == o], [t]) for o, t in zip(owners[:200], items[:200])]
    rows.size = 200
    noise = np.random.default_rng(0).standard_normal((200, 4)).astype(np.float32)  # towers that know nothing
    blend = hybrid.tune(spectrum, noise, np.random.default_rng(1).standard_normal((n_items, 4)).astype(np.float32), rows, lambdas=(10.0,))
    assert blend.tower_share <= 0.2 and blend.item_weight > 0
