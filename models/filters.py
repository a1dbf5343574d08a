"""Business filters brands ask for, applied in-graph with stock TF ops.

A filtered request carries, per row: k, a maximum price, a minimum follower
count on one platform, required categories and influencer ids to exclude.
Filters become a [batch, catalog] mask; top-k runs over the masked scores, so
stock TF Serving serves them too. Rows get k results when at least k
influencers qualify; `num_qualified` says how many did when fewer do.
"""

from typing import Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from data import schema
from models import features, request_checks

K_INPUT = "k"
MAX_PRICE_INPUT = "max_price"  # negative: no price cap
PLATFORM_INPUT = "platform"  # "": no follower filter
MIN_FOLLOWERS_INPUT = "min_followers"
REQUIRED_CATEGORIES_INPUT = "required_categories"  # comma-joined, all required; "": none
EXCLUDE_IDS_INPUT = "exclude_ids"  # [batch, any] influencer ids, padded with EMPTY_ID
NUM_RESULTS_KEY = "num_results"
NUM_QUALIFIED_KEY = "num_qualified"
EMPTY_ID = -1  # fills result slots nobody qualified for (score 0 there)
_BITS_PER_WORD = 63  # int64 words, sign bit unused

FILTER_SIGNATURE = [
    tf.TensorSpec([None], tf.int64, name=K_INPUT),
    tf.TensorSpec([None], tf.float32, name=MAX_PRICE_INPUT),
    tf.TensorSpec([None], tf.string, name=PLATFORM_INPUT),
    tf.TensorSpec([None], tf.int64, name=MIN_FOLLOWERS_INPUT),
    tf.TensorSpec([None], tf.string, name=REQUIRED_CATEGORIES_INPUT),
    tf.TensorSpec([None, None], tf.int64, name=EXCLUDE_IDS_INPUT),
]


def _category_bits(labels: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """Each influencer's categories as int64 bitset words: [catalog, words]."""
    position = {name: n for n, name in enumerate(vocabulary)}
    words = max(1, -(-len(vocabulary) // _BITS_PER_WORD))
    bits = np.zeros((len(labels), words), np.int64)
    for row, names in enumerate(labels):
        for name in set(names):
            word, bit = divmod(position[name], _BITS_PER_WORD)
            bits[row, word] |= np.int64(1) << np.int64(bit)
    return bits


class CatalogFilter(tf.Module):
    """The catalog's filterable attributes and the ops that turn filters into a mask."""

    def __init__(self, ids: np.ndarray, price: np.ndarray, followers: np.ndarray, categories: Sequence[Sequence[str]], max_k: int):
        super().__init__()
        self.size = len(ids)
        self.max_k = int(min(max_k, self.size))
        self.price = tf.Variable(np.asarray(price, np.float32), trainable=False, name="filter_price")
        self.followers = tf.Variable(np.asarray(followers, np.int64), trainable=False, name="filter_followers")  # [N, platforms]
        vocabulary = sorted({name for names in categories for name in names})
        self.category_bits = tf.Variable(_category_bits(categories, vocabulary), trainable=False, name="filter_category_bits")
        self._words = int(self.category_bits.shape[1])
        # Categories no influencer has get -1: a row requiring one matches nobody.
        self._category_index = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(vocabulary or [""], tf.string), tf.range(max(1, len(vocabulary)), dtype=tf.int64)),
            default_value=-1,
        )
        self._platform_index = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(features.FOLLOWERS), tf.range(len(features.FOLLOWERS), dtype=tf.int64)),
            default_value=-1,
        )
        self._index_of = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(np.asarray(ids, np.int64)), tf.range(len(ids), dtype=tf.int64)), default_value=-1
        )

    def index_of(self, influencer_ids: tf.Tensor) -> tf.Tensor:
        """Catalog positions of ids; -1 for ids not in the catalog."""
        return self._index_of.lookup(influencer_ids)

    def checked_k(self, k: tf.Tensor) -> tf.Tensor:
        """k itself, once every row's k is in [1, max_k] (else InvalidArgumentError)."""
        k = request_checks.checked(k, k >= 1, "k must be at least 1")
        return request_checks.checked(k, k <= self.max_k, f"k must be at most {self.max_k} (max_k of this model, at most the catalog size)")

    def _excluded_cells(self, ids: Union[tf.SparseTensor, tf.Tensor]) -> tf.Tensor:
        """[n, 2] (row, catalog position) of each excluded influencer the catalog knows (ids unknown to it dropped)."""
        if isinstance(ids, tf.SparseTensor):
            rows, values = ids.indices[:, 0], ids.values
        else:
            where = tf.where(tf.not_equal(ids, EMPTY_ID))
            rows, values = where[:, 0], tf.gather_nd(ids, where)
        positions = self.index_of(values)
        known = positions >= 0
        return tf.stack([tf.boolean_mask(rows, known), tf.boolean_mask(positions, known)], axis=1)

    def marked(self, cells: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        """[batch, catalog] True at the [n, 2] (row, position) cells."""
        empty = tf.zeros(tf.stack([tf.cast(batch, tf.int64), self.size]), tf.bool)
        return tf.tensor_scatter_nd_update(empty, cells, tf.ones(tf.shape(cells)[:1], tf.bool))

    def allowed_except(self, ids: Union[tf.SparseTensor, tf.Tensor], batch: tf.Tensor) -> "Allowed":
        """The whole catalog but `ids`, per row, without building the [batch, catalog] mask (see Allowed)."""
        return Allowed(self, batch, excluded=self._excluded_cells(ids))

    def _required_bits(self, required: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """[batch, words] bitsets of required categories, and [batch] rows requiring an unknown one."""
        tokens = categories_to_sparse(required)
        index = self._category_index.lookup(tokens.values)
        batch = tf.shape(required, out_type=tf.int64)[0]
        unknown = tf.math.unsorted_segment_max(tf.cast(index < 0, tf.int32), tokens.indices[:, 0], tf.cast(batch, tf.int32)) > 0
        known = index >= 0
        cells = tf.stack([tf.boolean_mask(tokens.indices[:, 0], known), tf.boolean_mask(index, known)], axis=1)
        width = self._words * _BITS_PER_WORD
        wanted = tf.tensor_scatter_nd_update(tf.zeros(tf.stack([batch, width]), tf.int64), cells, tf.ones(tf.shape(cells)[:1], tf.int64))
        powers = tf.bitwise.left_shift(tf.constant(1, tf.int64), tf.range(_BITS_PER_WORD, dtype=tf.int64))
        bits = tf.reduce_sum(tf.reshape(wanted, [-1, self._words, _BITS_PER_WORD]) * powers, axis=2)
        return bits, unknown

    def mask(self, max_price, platform, min_followers, required_categories, exclude_ids, past_hires=None) -> tf.Tensor:
        """[batch, catalog] True where the influencer passes every filter of the row and is neither among its
        `exclude_ids` nor, when given (sparse, per row), its owner's `past_hires`: both excluded in one scatter."""
        batch = tf.shape(max_price)[0]
        max_price = request_checks.price_cap(max_price, MAX_PRICE_INPUT)
        min_followers = request_checks.non_negative(min_followers, MIN_FOLLOWERS_INPUT)
        price_ok = (self.price[None, :] <= max_price[:, None]) | (max_price[:, None] < 0)

        no_platform = tf.equal(platform, "")
        column = self._platform_index.lookup(platform)
        column = request_checks.checked(column, (column >= 0) | no_platform, f"platform must be one of {', '.join(features.FOLLOWERS)} or empty")
        # min_followers is >= 0 by now, so only 0 goes without a platform.
        column = request_checks.checked(column, ~no_platform | (min_followers <= 0), "min_followers needs a platform")
        followers = tf.transpose(tf.gather(self.followers, tf.maximum(column, 0), axis=1))  # [B, N]
        followers_ok = no_platform[:, None] | (followers >= min_followers[:, None])

        bits, unknown = self._required_bits(required_categories)
        has = tf.bitwise.bitwise_and(self.category_bits[None, :, :], bits[:, None, :])
        categories_ok = tf.reduce_all(tf.equal(has, bits[:, None, :]), axis=2) & ~unknown[:, None]

        cells = self._excluded_cells(exclude_ids)
        if past_hires is not None:
            cells = tf.concat([cells, self._excluded_cells(past_hires)], axis=0)
        return price_ok & followers_ok & categories_ok & ~self.marked(cells, batch)


class Allowed:
    """Which influencers each row may get: a [batch, catalog] mask, or the catalog less a few excluded ids.

    An index answers from a few hundred candidates a row. Checking them against the
    excluded ids (a sorted search) costs little; the [batch, catalog] mask it replaces
    cost more than the ScaNN search itself at a million influencers. The mask is built
    only where a caller needs it (`dense`: the exact fallback).
    """

    def __init__(self, catalog: CatalogFilter, batch: tf.Tensor, mask: tf.Tensor = None, excluded: tf.Tensor = None):
        self._catalog, self._batch, self._mask, self._excluded = catalog, tf.cast(batch, tf.int64), mask, excluded
        # Each excluded (row, position) as one sorted key, for the lookups of `at` and the count.
        self._sorted_keys = None if excluded is None else tf.sort(self._keys(excluded[:, 0], excluded[:, 1]))

    @classmethod
    def of_mask(cls, catalog: CatalogFilter, mask: tf.Tensor) -> "Allowed":
        return cls(catalog, tf.shape(mask)[0], mask=mask)

    def _keys(self, rows: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
        return rows * self._catalog.size + positions

    def at(self, positions: tf.Tensor) -> tf.Tensor:
        """[batch, n] allowed for these catalog positions of each row (-1, no influencer: never)."""
        inside = positions >= 0
        if self._mask is not None:
            return inside & tf.gather(self._mask, tf.maximum(positions, 0), batch_dims=1)
        excluded = self._sorted_keys
        rows = tf.broadcast_to(tf.range(tf.shape(positions, out_type=tf.int64)[0])[:, None], tf.shape(positions, out_type=tf.int64))
        wanted = tf.reshape(self._keys(rows, positions), [1, -1])
        slot = tf.searchsorted(excluded[None, :], wanted)[0]
        hit = tf.gather(tf.concat([excluded, [-1]], axis=0), slot) == wanted[0]  # -1 past the end: no key is negative
        return inside & ~tf.reshape(hit, tf.shape(positions))

    def count(self) -> tf.Tensor:
        """[batch] how many influencers each row may get."""
        if self._mask is not None:
            return _count(self._mask)
        distinct, _ = tf.unique(self._sorted_keys)  # an id excluded twice counts once
        per_row = tf.math.unsorted_segment_sum(tf.ones_like(distinct), distinct // self._catalog.size, self._batch)
        return self._catalog.size - per_row

    def dense(self) -> tf.Tensor:
        """The [batch, catalog] mask."""
        if self._mask is not None:
            return self._mask
        return ~self._catalog.marked(self._excluded, self._batch)


def _count(mask: tf.Tensor) -> tf.Tensor:
    """[batch] True entries per row, summed as int32 (a catalog has fewer than 2^31 influencers): an int64 cast of
    a [256, 1M] mask is 2 GB of temporaries and took twice as long."""
    return tf.cast(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1), tf.int64)


def categories_to_sparse(joined: tf.Tensor) -> tf.SparseTensor:
    """'Action,Drama' strings -> [B, None] sparse labels, stripped, empty labels dropped (the rule of data/records.py)."""
    tokens = tf.strings.strip(tf.strings.split(joined, schema.CATEGORY_SEPARATOR))
    return tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, "")).to_sparse()


def masked_top_k(scores: tf.Tensor, ids: tf.Tensor, allowed: tf.Tensor, k: tf.Tensor, count: tf.Tensor = None) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(ids, scores, num_results): top max(k) allowed entries per row.

    num_results is min(k, allowed entries) by construction: allowed entries
    always sort before the others (a non-finite score among them ranks last,
    never as a gap). Slots past it are EMPTY_ID with score 0. `ids` is [N]
    (catalog order) or [B, N] (per-row candidates). `count`: the allowed
    entries per row, when the caller knows them (Allowed.count), so a
    [batch, catalog] mask is not counted again.
    """
    width = tf.maximum(tf.minimum(tf.reduce_max(k), tf.cast(tf.shape(scores)[1], tf.int64)), 0)
    lowest = tf.constant(np.finfo(scores.dtype.as_numpy_dtype).min, scores.dtype)
    ranked = tf.where(allowed, tf.where(tf.math.is_finite(scores), scores, lowest), tf.constant(-np.inf, scores.dtype))
    top = tf.math.top_k(ranked, k=tf.cast(width, tf.int32))
    found = tf.gather(ids, top.indices) if ids.shape.rank == 1 else tf.gather(ids, top.indices, batch_dims=1)
    filled = tf.minimum(k, count if count is not None else _count(allowed))
    valid = tf.range(width)[None, :] < filled[:, None]
    return (
        tf.where(valid, found, tf.constant(EMPTY_ID, tf.int64)),
        tf.where(valid, top.values, tf.zeros_like(top.values)),
        tf.reduce_sum(tf.cast(valid, tf.int64), axis=1),
    )
