"""Business filters on a tiny catalog: each filter, their combination, k checks and padding."""

import numpy as np
import pytest
import tensorflow as tf

from models.filters import EMPTY_ID, Allowed, CatalogFilter, masked_top_k

IDS = np.array([10, 11, 12, 13, 14], np.int64)
PRICE = np.array([0.2, 0.5, 0.8, 0.3, 0.9], np.float32)
FOLLOWERS = np.array([[100, 5, 0], [2000, 50, 10], [50, 9000, 0], [700, 0, 300], [10, 10, 10]], np.int64)  # insta, tiktok, youtube
CATEGORIES = [["Action", "Drama"], ["Comedy"], ["Action"], ["Drama", "Romance", "Action"], []]


@pytest.fixture(scope="module")
def catalog() -> CatalogFilter:
    return with_ids(CatalogFilter(IDS, PRICE, FOLLOWERS, CATEGORIES, max_k=4), IDS)


def with_ids(catalog: CatalogFilter, ids: np.ndarray) -> CatalogFilter:
    catalog.ids = ids  # what the tests read results back with
    return catalog


def allowed(catalog, max_price=-1.0, platform="", min_followers=0, required="", exclude=()):
    exclude_ids = tf.constant([list(exclude) or [EMPTY_ID]], tf.int64)
    mask = catalog.mask(
        tf.constant([max_price], tf.float32), tf.constant([platform]), tf.constant([min_followers], tf.int64), tf.constant([required]), exclude_ids
    )
    return catalog.ids[mask.numpy()[0]].tolist()


def test_each_filter_alone(catalog):
    assert allowed(catalog) == IDS.tolist()
    assert allowed(catalog, max_price=0.5) == [10, 11, 13]
    assert allowed(catalog, platform="tiktok", min_followers=50) == [11, 12]
    assert allowed(catalog, platform="youtube") == IDS.tolist()  # a platform without a minimum filters nothing
    assert allowed(catalog, required="Action") == [10, 12, 13]
    assert allowed(catalog, required=" Drama , Action,Drama") == [10, 13]  # spaces and repeats are harmless
    assert allowed(catalog, exclude=[11, 14, 999]) == [10, 12, 13]  # unknown ids are ignored


def test_filters_combine_and_unknown_category_matches_nobody(catalog):
    assert allowed(catalog, max_price=0.85, platform="insta_follower", min_followers=60, required="Action") == [10, 13]
    assert allowed(catalog, max_price=0.85, platform="insta_follower", min_followers=60, required="Action", exclude=[13]) == [10]
    assert allowed(catalog, required="Action,Sports") == []


def test_rows_of_a_batch_filter_independently(catalog):
    mask = catalog.mask(
        tf.constant([0.3, -1.0], tf.float32),
        tf.constant(["", "youtube"]),
        tf.constant([0, 100], tf.int64),
        tf.constant(["", "Drama"]),
        tf.constant([[EMPTY_ID], [EMPTY_ID]], tf.int64),
    ).numpy()
    assert IDS[mask[0]].tolist() == [10, 13] and IDS[mask[1]].tolist() == [13]


def test_many_categories_span_several_bitset_words():
    names = [f"c{i}" for i in range(130)]  # three 63-bit words
    ids = np.arange(3, dtype=np.int64)
    catalog = with_ids(CatalogFilter(ids, np.zeros(3, np.float32), np.zeros((3, 3), np.int64), [names, names[:64], names[120:]], max_k=3), ids)
    assert allowed(catalog, required="c0,c63") == [0, 1]
    assert allowed(catalog, required="c129,c0") == [0]
    assert allowed(catalog, required="c125") == [0, 2]


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(k=[0]), "k must be at least 1"),
        (dict(k=[5]), "k must be at most 4"),
        (dict(platform=["facebook"]), "platform must be one of"),
        (dict(min_followers=[10]), "min_followers needs a platform"),
    ],
)
def test_bad_requests_raise_invalid_argument(catalog, bad, message):
    args = dict(k=[2], max_price=[-1.0], platform=[""], min_followers=[0], required=[""])
    args.update(bad)

    @tf.function
    def run():
        k = catalog.checked_k(tf.constant(args["k"], tf.int64))
        mask = catalog.mask(
            tf.constant(args["max_price"], tf.float32),
            tf.constant(args["platform"]),
            tf.constant(args["min_followers"], tf.int64),
            tf.constant(args["required"]),
            tf.constant([[EMPTY_ID]], tf.int64),
        )
        return k, mask

    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        run()


def test_masked_top_k_pads_rows_past_their_k_or_their_qualified_count():
    scores = tf.constant([[0.1, 0.9, 0.5, 0.7], [0.3, 0.2, 0.8, 0.4]], tf.float32)
    ids = tf.constant([10, 11, 12, 13], tf.int64)
    mask = tf.constant([[True, True, True, True], [False, True, False, False]])
    top_ids, top_scores, filled = masked_top_k(scores, ids, mask, tf.constant([3, 2], tf.int64))
    np.testing.assert_array_equal(top_ids.numpy(), [[11, 13, 12], [11, EMPTY_ID, EMPTY_ID]])
    np.testing.assert_allclose(top_scores.numpy(), [[0.9, 0.7, 0.5], [0.2, 0.0, 0.0]])
    np.testing.assert_array_equal(filled.numpy(), [3, 1])


def test_masked_top_k_counts_are_consistent_even_for_non_finite_scores():
    """num_results is min(k, allowed) by construction; non-finite scores rank last, never as gaps."""
    scores = tf.constant([[np.nan, 0.5, np.inf, 0.1, 0.2], [0.3, 0.2, 0.1, 0.0, -1.0]], tf.float32)
    allowed = tf.constant([[True, True, True, False, False], [False, True, False, False, False]])
    ids, top, filled = masked_top_k(scores, tf.constant(IDS), allowed, tf.constant([4, 3], tf.int64))
    assert filled.numpy().tolist() == [3, 1]
    assert ids.numpy()[0][0] == 11 and sorted(ids.numpy()[0][:3].tolist()) == [10, 11, 12] and ids.numpy()[0][3] == EMPTY_ID
    assert ids.numpy()[1].tolist() == [11, EMPTY_ID, EMPTY_ID, EMPTY_ID]


@pytest.mark.parametrize("max_price", [1e20, 3.5e38, np.nan, -np.inf, 1.5])
def test_price_caps_outside_the_price_range_are_refused(catalog, max_price):
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_price must be a number from 0 to 1"):
        allowed(catalog, max_price=max_price)


def test_negative_min_followers_are_refused(catalog):
    with pytest.raises(tf.errors.InvalidArgumentError, match="min_followers must be a non-negative integer"):
        allowed(catalog, platform="tiktok", min_followers=-1)


def test_allowed_from_excluded_ids_agrees_with_the_mask(catalog):
    """Candidates checked against a row's excluded ids (no [batch, catalog] mask) answer as the mask does."""
    excluded = tf.constant([[11, 11, 999, EMPTY_ID], [EMPTY_ID] * 4, [10, 12, 13, 14]], tf.int64)  # a repeat, an unknown id, padding
    positions = tf.constant([[0, 1, -1, 4], [1, 2, 3, -1], [0, 1, 2, 3]], tf.int64)  # -1: an index's empty slot
    sparse = catalog.allowed_except(excluded, 3)
    no_filter = dict(max_price=tf.constant([-1.0] * 3), platform=tf.constant([""] * 3), min_followers=tf.constant([0] * 3, tf.int64),
                     required_categories=tf.constant([""] * 3))
    mask = catalog.mask(**no_filter, exclude_ids=excluded)
    dense = Allowed.of_mask(catalog, mask)
    assert sparse.dense().numpy().tolist() == mask.numpy().tolist()
    assert sparse.count().numpy().tolist() == dense.count().numpy().tolist() == [4, 5, 1]
    expected = [[True, False, False, True], [True, True, True, False], [False, True, False, False]]
    assert sparse.at(positions).numpy().tolist() == dense.at(positions).numpy().tolist() == expected
    sparse_hires = tf.sparse.from_dense(tf.constant([[13, 0], [0, 0], [10, 14]], tf.int64))  # owner histories arrive sparse
    assert catalog.allowed_except(sparse_hires, 3).count().numpy().tolist() == [4, 5, 3]
    # A filtered request excludes its own ids and the owner's past hires in one mask.
    both = catalog.mask(**no_filter, exclude_ids=excluded, past_hires=sparse_hires).numpy()
    assert [IDS[row].tolist() for row in both] == [[10, 12, 14], [10, 11, 12, 13, 14], [11]]
