"""Why recommended: each past hire's part of a served score, read off the dot product (numpy is the oracle)."""

import numpy as np
import tensorflow as tf

from models import explain
from models.filters import EMPTY_ID


def _case(seed=0, batch=2, k=4, hires=5, tower=3, rank=6):
    rng = np.random.default_rng(seed)
    ids = rng.integers(100, 200, (batch, k))
    ids[1, -1] = EMPTY_ID  # an empty result slot
    candidates = rng.standard_normal((batch, k, tower + rank)).astype(np.float32)
    tower_query = rng.standard_normal((batch, tower)).astype(np.float32)
    hire_ids = rng.integers(1, 99, (batch, hires))
    hire_ids[1, 3:] = EMPTY_ID  # owner 1 has 3 hires
    hire_queries = rng.standard_normal((batch, hires, rank)).astype(np.float32) * (hire_ids != EMPTY_ID)[:, :, None]
    return ids, candidates, tower_query, tower, hire_ids, hire_queries


def _explain(ids, candidates, tower_query, tower, hire_ids, hire_queries):
    out = explain.explanations(tf.constant(ids, tf.int64), tf.constant(candidates), tf.constant(tower_query), tf.constant(tower),
                               tf.constant(hire_ids, tf.int64), tf.constant(hire_queries))
    return {key: value.numpy() for key, value in out.items()}


def test_parts_are_the_terms_of_the_dot_product_and_the_top_hires_are_the_largest():
    ids, candidates, tower_query, tower, hire_ids, hire_queries = _case()
    got = _explain(ids, candidates, tower_query, tower, hire_ids, hire_queries)
    query = np.concatenate([tower_query, hire_queries.sum(axis=1)], axis=1)  # the served query
    for b in range(2):
        for j in range(4):
            if ids[b, j] == EMPTY_ID:
                assert (got[explain.HIRE_IDS_KEY][b, j] == EMPTY_ID).all() and got[explain.TOWER_SHARE_KEY][b, j] == 0
                continue
            score = query[b] @ candidates[b, j]
            parts = {int(h): float(q @ candidates[b, j, tower:]) for h, q in zip(hire_ids[b], hire_queries[b]) if h != EMPTY_ID}
            towers = float(tower_query[b] @ candidates[b, j, :tower])
            assert np.isclose(towers + sum(parts.values()), score, rtol=1e-4, atol=1e-5)  # the parts make the score
            best = sorted(parts, key=lambda h: -parts[h])[: explain.EXPLAINED_HIRES]
            assert got[explain.HIRE_IDS_KEY][b, j].tolist() == best
            np.testing.assert_allclose(got[explain.HIRE_SHARES_KEY][b, j], [parts[h] / score for h in best], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(got[explain.TOWER_SHARE_KEY][b, j], towers / score, rtol=1e-4, atol=1e-5)
            if len(parts) == explain.EXPLAINED_HIRES:  # every hire shown: the shares make 1
                assert np.isclose(got[explain.HIRE_SHARES_KEY][b, j].sum() + got[explain.TOWER_SHARE_KEY][b, j], 1.0, atol=1e-4)


def test_a_hire_removed_from_the_history_removes_its_part():
    ids, candidates, tower_query, tower, hire_ids, hire_queries = _case(seed=1)
    before = _explain(ids, candidates, tower_query, tower, hire_ids, hire_queries)
    top = before[explain.HIRE_IDS_KEY][0, 0, 0]
    keep = hire_ids[0] != top
    removed_ids = hire_ids.copy()
    removed_ids[0] = np.where(keep, hire_ids[0], EMPTY_ID)
    removed_queries = hire_queries.copy()
    removed_queries[0] *= keep[:, None]
    after = _explain(ids, candidates, tower_query, tower, removed_ids, removed_queries)
    assert top not in after[explain.HIRE_IDS_KEY][0].ravel()
    np.testing.assert_array_equal(after[explain.HIRE_IDS_KEY][1], before[explain.HIRE_IDS_KEY][1])  # the other owner unchanged


def test_no_hires_or_towers_only_give_empty_slots_and_the_towers_whole_score():
    ids, candidates, tower_query, tower, _, _ = _case(seed=2)
    got = _explain(ids, candidates[:, :, :tower], tower_query, tower, np.zeros((2, 0), np.int64), np.zeros((2, 0, 0), np.float32))
    assert got[explain.HIRE_IDS_KEY].shape == (2, 4, explain.EXPLAINED_HIRES) and (got[explain.HIRE_IDS_KEY] == EMPTY_ID).all()
    assert (got[explain.HIRE_SHARES_KEY] == 0).all()
    np.testing.assert_allclose(got[explain.TOWER_SHARE_KEY][ids != EMPTY_ID], 1.0, rtol=1e-5)
