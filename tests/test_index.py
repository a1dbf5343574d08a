"""ScaNN index tuning measures what `recommend` serves, exact fallback included."""

import numpy as np

from models.index import build_index
from models.topk import exact_top_k


def test_rows_left_short_by_their_hires_count_as_exactly_answered():
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((60, 8)).astype(np.float32)
    ids = np.arange(100, 160, dtype=np.int64)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    top, _ = exact_top_k(queries[:1], embeddings, 25)
    exclude = [ids[top[0]]] + [np.array([], np.int64)] * 4  # owner 0 hired its 25 best: 20 fetched leave it nothing
    index, report = build_index(embeddings, ids, queries, k=5, target_recall=0.95, fetch=20, exclude_ids=exclude)
    assert report["exact_fallback_share"] == 0.2
    assert report["recall_at_k"] >= 0.95 and report["fetch"] == 20




def _tiny_scann(fetch: int, queries: int = 6):
    """A 60-influencer catalog, a ScannModule over it with one leaf in seven searched, and some queries."""
    import types

    import tensorflow as tf

    from models.filters import CatalogFilter
    from models.index import ScannModule
    from models.serving import RecommenderModule

    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((60, 8)).astype(np.float32)
    ids = np.arange(100, 160, dtype=np.int64)
    serving = types.SimpleNamespace(
        filters=CatalogFilter(ids, np.zeros(60), np.zeros((60, 3)), [[]] * 60, max_k=10),
        catalog_ids=tf.constant(ids),
        catalog_embeddings=tf.constant(embeddings),
    )
    serving.rank = lambda query, allowed, k: RecommenderModule.rank(serving, query, allowed, k)
    query = rng.standard_normal((queries, 8)).astype(np.float32)
    index, report = build_index(embeddings, ids, query, k=5, target_recall=0.0, fetch=fetch)
    assert report["settings"]["num_leaves_to_search"] == 1 and report["settings"]["num_leaves"] == 7
    return ScannModule(serving, index), serving, tf.constant(query)


def test_slots_scann_found_no_neighbour_for_are_empty_not_the_first_influencer():
    """A leaf holds far fewer than 50 of the 60 influencers: a batched search pads its rows to the longest."""
    module, _, queries = _tiny_scann(fetch=50)
    batched = module.search(embedding=queries)
    ids, scores = batched["influencer_id"].numpy(), batched["score"].numpy()
    sizes = (ids != -1).sum(axis=1)
    assert ids.shape[1] < 50 and sizes.min() < ids.shape[1] and np.isfinite(scores).all()
    for row, size in enumerate(sizes):
        assert len(set(ids[row, :size].tolist())) == size > 0 and (ids[row, :size] >= 100).all()  # not the first influencer, repeated
        assert (ids[row, size:] == -1).all() and (scores[row, size:] == 0).all()


def test_a_row_short_of_candidates_is_answered_exactly_and_the_others_from_the_index():
    """ScaNN's exact fallback is chosen per row (as batch scoring and the index tuning choose it), not for the whole call."""
    import tensorflow as tf

    from models.filters import Allowed
    from models.serving import IDS_KEY

    module, serving, queries = _tiny_scann(fetch=12)
    fetched = module.search(embedding=queries)[IDS_KEY].numpy()
    allowed = np.ones((len(fetched), 60), bool)
    allowed[0, fetched[0][fetched[0] != -1] - 100] = False  # row 0's candidates are all excluded: it is short
    k = tf.constant([5] * len(fetched), tf.int64)
    exact = serving.rank(queries, Allowed.of_mask(serving.filters, tf.constant(allowed)), k)[IDS_KEY].numpy()
    answer = module._rank(queries, Allowed.of_mask(serving.filters, tf.constant(allowed)), k)[IDS_KEY].numpy()
    # The same exclusions given as ids (how `recommend` passes past hires) give the same answer.
    excluded_ids = tf.ragged.constant([fetched[0][fetched[0] != -1].tolist()] + [[]] * (len(fetched) - 1), tf.int64).to_sparse()
    by_ids = module._rank(queries, serving.filters.allowed_except(excluded_ids, len(fetched)), k)[IDS_KEY].numpy()
    np.testing.assert_array_equal(by_ids, answer)
    enough = [row for row in range(1, len(fetched)) if (fetched[row] != -1).sum() >= 5]
    assert enough  # some rows have five candidates of their own
    np.testing.assert_array_equal(answer[0], exact[0])
    for row in range(1, len(fetched)):
        if row in enough:
            assert set(answer[row].tolist()) <= set(fetched[row].tolist())  # the index's own candidates, not the exact ranking
        else:
            np.testing.assert_array_equal(answer[row], exact[row])


def test_batch_scoring_drops_the_padding_of_models_pushed_before_the_fix():
    from models.topk import drop_excluded

    found = np.array([[105, 103, 100, 100]])  # ScaNN's padding: index 0 (the first influencer), NaN score
    scores = np.array([[2.0, 1.0, np.nan, np.nan]], np.float32)
    ids, kept, short = drop_excluded(found, scores, [[]], 4, set(range(100, 110)))
    assert ids[0].tolist() == [105, 103] and short.tolist() == [True]


def test_the_index_kept_is_the_first_setting_that_reaches_the_target_recall():
    from models.index import _candidate_settings

    rng = np.random.default_rng(3)
    embeddings = rng.standard_normal((900, 8)).astype(np.float32)
    ids = np.arange(900, dtype=np.int64)
    queries = rng.standard_normal((40, 8)).astype(np.float32)
    recalls = {}
    for target in (0.5, 0.8, 0.97):
        _, report = build_index(embeddings, ids, queries, k=10, target_recall=target, fetch=10)
        recalls.update({t["num_leaves_to_search"]: t["recall_at_k"] for t in report["tried"]})
        order = [s["num_leaves_to_search"] for s in _candidate_settings(900)]
        chosen = order.index(report["settings"]["num_leaves_to_search"])
        assert report["recall_at_k"] >= target or chosen == len(order) - 1
        # every cheaper setting that was tried fell short, and the one just below the choice was tried
        assert all(t["recall_at_k"] < target for t in report["tried"] if order.index(t["num_leaves_to_search"]) < chosen)
        assert chosen == 0 or order[chosen - 1] in [t["num_leaves_to_search"] for t in report["tried"]]
        assert len(report["tried"]) < len(order)
