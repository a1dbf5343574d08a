"""The benchmark protocol on cases small enough to check by hand."""

import numpy as np
import pytest

from models.retrieval_metrics import (build_vocab, evaluate_rankings, evaluate_topk, index_interactions, lookup,
                                      random_split, recall_against)
from models.topk import top_k

LOG3 = np.log2(3.0)


def _pairs(mapping):
    """{owner: [items]} -> (owners, items) index arrays."""
    owners = [o for o, items in mapping.items() for _ in items]
    items = [i for items in mapping.values() for i in items]
    return np.array(owners, np.int64), np.array(items, np.int64)


def _table_fn(table):
    table = np.asarray(table, np.float64)
    return lambda owners: table[owners]


# Owner 0: train {0}, held out {4, 5}: ranking 2, 4, 1, 3, 5 -> hit at rank 2.
# Owner 1: no train, held out {0}: ranked first.
# Owner 2: train only -> skipped (its scores would be garbage anyway).
# Owner 3: train {1, 2} hold the top scores, masked; held out {3} at rank 3.
SCORES = [[10, 5, 9, 1, 8, 0],
          [3, 2, 1, 0, 0, 0],
          [np.nan] * 6,
          [0, 100, 100, 5, 6, 7]]
TRAIN = _pairs({0: [0], 2: [1], 3: [1, 2]})
HELDOUT = _pairs({0: [4, 5], 1: [0], 3: [3]})


def test_hand_computed_recall_and_ndcg():
    scores = np.array(SCORES)
    scores[2] = 0.0
    got = evaluate_rankings(_table_fn(scores), TRAIN, HELDOUT, n_items=6, ks=(1, 3))
    assert got["owners"] == 3
    assert got["recall@1"] == pytest.approx(1 / 3)
    assert got["ndcg@1"] == pytest.approx(1 / 3)
    # Owner 0 has 2 held-out items < K=3: recall 1 / min(3, 2); ideal DCG has 2 ones.
    owner0_ndcg = (1 / LOG3) / (1 + 1 / LOG3)
    assert got["recall@3"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert got["ndcg@3"] == pytest.approx((owner0_ndcg + 1 + 0.5) / 3)
    # Tops (train items masked): owner 0 ranks 2, 4, 1 ..; owner 1 ranks 0, 1, 2 ..; owner 3 ranks 5, 4, 3 ..
    assert got["coverage@1"] == pytest.approx(3 / 6)  # items 2, 0 and 5
    assert got["coverage@3"] == pytest.approx(6 / 6)


def test_owners_without_heldout_are_never_scored():
    seen = []
    table = np.array(SCORES, np.float64)
    table[2] = 0.0

    def scores_fn(owners):
        seen.extend(owners.tolist())
        return table[owners]

    evaluate_rankings(scores_fn, TRAIN, HELDOUT, n_items=6, ks=(1, 3), batch_size=2)
    assert sorted(seen) == [0, 1, 3]


def test_default_keys_and_k_larger_than_catalog():
    got = evaluate_rankings(_table_fn(np.where(np.isnan(SCORES), 0, SCORES)), TRAIN, HELDOUT, n_items=6)
    assert set(got) == {"recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@10", "coverage@20", "owners"}
    # Every unmasked item is ranked, so every held-out item is found.
    assert got["recall@10"] == pytest.approx(1.0)
    assert got["recall@20"] == pytest.approx(1.0)


def test_train_items_cannot_count_as_hits():
    # Held-out item 2 is also a train item (repeated pair): it is masked, so it is not relevant.
    train = _pairs({0: [2]})
    heldout = _pairs({0: [2, 3], 1: [2]})
    scores = np.array([[0, 0, 9, 5], [0, 0, 9, 5]], np.float64)
    got = evaluate_rankings(_table_fn(scores), train, heldout, n_items=4, ks=(1,))
    assert got["owners"] == 2
    # Owner 0: relevant {3}, ranked first after masking 2; owner 1: item 2 first.
    assert got["recall@1"] == pytest.approx(1.0)


def test_ties_go_to_the_lower_item_index():
    train = _pairs({0: [1]})
    heldout = _pairs({0: [3, 4]})
    flat = lambda owners: np.zeros((len(owners), 5))  # noqa: E731
    got = evaluate_rankings(flat, train, heldout, n_items=5, ks=(2, 3))
    # Ranking 0, 2, 3, 4: no hit in the top 2; item 3 at rank 3.
    assert got["recall@2"] == 0.0
    assert got["recall@3"] == pytest.approx(0.5)
    assert got["ndcg@3"] == pytest.approx(0.5 / (1 + 1 / LOG3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])  # numpy's path and tf.math.top_k's
def test_top_k_matches_a_full_stable_sort_with_many_ties(dtype):
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 4, size=(40, 50)).astype(dtype)
    scores[:5, :] = -np.inf
    scores[5, 10:] = -np.inf  # an owner with fewer allowed influencers than k
    full = np.lexsort((np.broadcast_to(np.arange(50), scores.shape), -scores), axis=1)
    for k in (1, 7, 20, 49, 50, 80):
        got = top_k(scores, k)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, full[:, :min(k, 50)])


def test_top_k_ranks_nan_last():
    scores = np.array([[0.5, np.nan, 2.0, -np.inf, 1.0]], np.float32)
    np.testing.assert_array_equal(top_k(scores, 5), [[2, 4, 0, 3, 1]])


def test_batching_does_not_change_results():
    rng = np.random.default_rng(0)
    n_owners, n_items = 30, 40
    table = np.round(rng.standard_normal((n_owners, n_items)), 1)
    train = (rng.integers(0, n_owners, 200), rng.integers(0, n_items, 200))
    heldout = (rng.integers(0, n_owners, 60), rng.integers(0, n_items, 60))
    whole = evaluate_rankings(_table_fn(table), train, heldout, n_items)
    for kwargs in (dict(batch_size=1), dict(batch_size=7), dict(memory_budget=1)):
        assert evaluate_rankings(_table_fn(table), train, heldout, n_items, **kwargs) == whole


def test_scores_fn_state_is_not_overwritten_by_masking():
    table = np.arange(12, dtype=np.float64).reshape(3, 4)
    before = table.copy()
    evaluate_rankings(lambda owners: table[owners.min():owners.max() + 1], _pairs({0: [3], 1: [2]}),
                      _pairs({0: [1], 1: [0]}), n_items=4, ks=(1,))
    np.testing.assert_array_equal(table, before)


def test_nan_scores_and_wrong_shapes_are_rejected():
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rankings(lambda o: np.full((len(o), 3), np.nan), _pairs({}), _pairs({0: [1]}), n_items=3)
    with pytest.raises(ValueError, match="must return"):
        evaluate_rankings(lambda o: np.zeros((len(o), 2)), _pairs({}), _pairs({0: [1]}), n_items=3)
    with pytest.raises(ValueError, match="item indices"):
        evaluate_rankings(lambda o: np.zeros((len(o), 3)), _pairs({}), _pairs({0: [3]}), n_items=3)


def test_no_heldout_owners_gives_nan():
    got = evaluate_rankings(lambda o: np.zeros((len(o), 3)), _pairs({0: [1]}), _pairs({}), n_items=3)
    assert got["owners"] == 0 and np.isnan(got["recall@10"])


def test_evaluate_topk_agrees_with_evaluate_rankings():
    rng = np.random.default_rng(1)
    n_owners, n_items = 50, 60
    table = np.round(rng.standard_normal((n_owners, n_items)), 1)  # rounded: plenty of ties
    train = (rng.integers(0, n_owners, 400), rng.integers(0, n_items, 400))
    heldout = (rng.integers(0, n_owners, 100), rng.integers(0, n_items, 100))
    max_train = np.bincount(train[0], minlength=n_owners).max()
    ks = (5, 10, 20)
    # Unmasked ranking, deep enough that removing train items still leaves max(ks).
    ranked = top_k(table, max(ks) + max_train)
    via_topk = evaluate_topk(lambda owners: ranked[owners], train, heldout, n_items, ks=ks, batch_size=8)
    via_scores = evaluate_rankings(_table_fn(table), train, heldout, n_items, ks=ks)
    assert via_topk.keys() == via_scores.keys()
    for key in via_scores:
        assert via_topk[key] == pytest.approx(via_scores[key], abs=1e-12), key


def test_evaluate_topk_short_rows_and_padding_count_as_misses():
    train = _pairs({0: [0]})
    heldout = _pairs({0: [2, 5]})
    # Row: train item 0 dropped, padding dropped -> [2, 1]; then -1s up to K.
    ranked = np.array([[0, -1, 2, 1]])
    got = evaluate_topk(lambda owners: ranked[owners], train, heldout, n_items=6, ks=(1, 3))
    assert got["recall@1"] == 1.0
    assert got["recall@3"] == pytest.approx(0.5)
    assert got["ndcg@3"] == pytest.approx(1 / (1 + 1 / LOG3))
    with pytest.raises(ValueError, match="n_items"):
        evaluate_topk(lambda owners: np.array([[6]]), train, heldout, n_items=6, ks=(1,))


def test_recall_against():
    reference = np.array([[1, 2, 3], [4, 5, 6]])
    candidate = np.array([[3, 2, 9], [7, 8, 9]])
    assert recall_against(reference, candidate, 3) == pytest.approx((2 / 3 + 0) / 2)
    assert recall_against(reference, candidate, 2) == pytest.approx((1 / 2 + 0) / 2)
    assert recall_against(reference, reference, 3) == 1.0
    # Padding never matches; a row with fewer reference items divides by what it has.
    assert recall_against(np.array([[5, -1, -1]]), np.array([[-1, 5, 7]]), 3) == 1.0
    # Raw ids far beyond any catalog size (no key overflow), rows do not leak into each other.
    big = np.int64(2**62)
    assert recall_against(np.array([[big, 1], [2, 3]]), np.array([[2, big], [big, 1]]), 2) == pytest.approx(0.25)


def test_index_interactions_maps_and_reports_unknown_items():
    item_vocab = np.array([30, 10, 20])  # any order: index = position
    indexed = index_interactions(np.array(["a", "b", "a", "c"]), np.array([10, 99, 20, 30]), item_vocab)
    np.testing.assert_array_equal(indexed.items, [1, 2, 0])
    np.testing.assert_array_equal(indexed.owner_vocab, ["a", "c"])
    np.testing.assert_array_equal(indexed.owners, [0, 0, 1])
    np.testing.assert_array_equal(indexed.kept, [True, False, True, True])
    assert indexed.n_dropped == 1
    with_vocab = index_interactions(np.array(["a", "z"]), np.array([10, 10]), item_vocab, owner_vocab=np.array(["a"]))
    assert with_vocab.n_dropped == 1 and with_vocab.owners.tolist() == [0]
    with pytest.raises(ValueError, match="repeats"):
        lookup(np.array([1]), np.array([1, 1]))
    np.testing.assert_array_equal(build_vocab(np.array([5, 3, 5])), [3, 5])


def test_random_split_is_exact_and_seeded():
    mask = random_split(1000, 0.2, seed=4)
    assert mask.sum() == 200
    np.testing.assert_array_equal(mask, random_split(1000, 0.2, seed=4))
    assert (mask != random_split(1000, 0.2, seed=5)).any()
