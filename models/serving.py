"""The exported SavedModel: stock TensorFlow ops only, so stock TF Serving loads it.

Signatures (inputs -> outputs):
- serving_default: serialized raw tf.Examples -> predicted combined rating (TFMA uses it)
- transform_features: serialized raw tf.Examples -> dense Transform outputs (TFMA's preprocessing)
- recommend: owner_id -> top-K influencer_id, score, num_results, num_qualified
  (brute force over the whole catalog; the owner's past hires excluded; unknown
  owners get the fallback profile)
- recommend_filtered: owner_id, k and the business filters (models/filters.py) -> the same
- recommend_cold_start[_filtered]: categories (comma-joined), budget [, k, filters] -> the same,
  for owners with no history
- recommend_explained[_filtered]: as recommend[_filtered], plus why (models/explain.py): per result the
  past hires with the largest parts of its score, their shares, and the towers' share; explain: owner_id,
  influencer_id [batch, k] -> the same for influencers ranked elsewhere (batch scoring)
- query_embedding: owner_id -> embedding, history_size (0 = owner unknown to the model); cold_start_embedding: categories, budget -> embedding
- candidate_embedding: raw influencer features -> embedding
"""

from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from data import schema
from models import explain, features, request_checks
from models.filters import FILTER_SIGNATURE, NUM_QUALIFIED_KEY, NUM_RESULTS_KEY, Allowed, CatalogFilter, categories_to_sparse, masked_top_k
from models.retrieval_metrics import lookup
from models.slices import HISTORY_EDGES, OUTSIDE_CATALOG, POPULARITY_LABELS, groups_of_hire_counts, history_labels

OWNER_INPUT = "owner_id"  # the request field users send (REST: {"owner_id": 42})
SCORE_KEY = "score"
IDS_KEY = "influencer_id"
EMBEDDING_KEY = "embedding"
HISTORY_SIZE_KEY = "history_size"
BUDGET_INPUT = "budget"  # the price_normalized a cold-start owner aims at
_NO_ID = -1  # Fills raw id inputs a request does not have; matches no owner or influencer.
# Signatures whose every output row depends on its own input row alone (up to float rounding: scores agree
# to about 1e-5, rankings are the same), in widths the model fixes: a server may answer concurrent requests
# in one call (serving/batching.py). Not the *_filtered ones, whose outputs are as wide as the largest k in
# the call, and not the ScaNN model's: a batched ScaNN search scores candidates with other kernels than a
# single query, so about one row in seven gets a different 300th candidate in a batch than alone.
ROW_INDEPENDENT_SIGNATURES = frozenset({"recommend", "recommend_cold_start", "query_embedding", "cold_start_embedding", "candidate_embedding"})
CANDIDATE_SIGNATURE = [  # raw influencer features, one per row
    tf.TensorSpec([None], tf.int64, name=features.INFLUENCER_ID),
    *[tf.TensorSpec([None], tf.int64, name=name) for name in features.FOLLOWERS],
    tf.TensorSpec([None], tf.float32, name=features.PRICE),
    tf.TensorSpec([None], tf.string, name=features.CATEGORIES),  # comma-joined
]
COLD_START_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name=features.CATEGORIES),  # comma-joined, e.g. "Action,Drama"
    tf.TensorSpec([None], tf.float32, name=BUDGET_INPUT),  # the price_normalized the owner aims at
]


def served_function(*input_signature: tf.TensorSpec):
    """A signature's tf.function, traced as written: the served code branches with tf.cond, never in Python on a
    tensor, so autograph's rewrite of every function it calls (a third of each export's tracing) buys nothing."""
    return tf.function(input_signature=list(input_signature), autograph=False)


def complete_raw_features(partial: Mapping[str, tf.Tensor], raw_spec: Mapping[str, tf.io.FixedLenFeature], batch: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Fills the raw features a request lacks so the transform graph can run.

    Ids get -1 (no owner / no influencer), other numbers 0, lists stay empty;
    the caller only reads the outputs that depend on what it did provide.
    """
    full = {}
    for name, spec in raw_spec.items():
        if name in partial:
            full[name] = partial[name]
        elif isinstance(spec, tf.io.VarLenFeature):
            full[name] = tf.sparse.SparseTensor(tf.zeros([0, 2], tf.int64), tf.zeros([0], spec.dtype), tf.stack([tf.cast(batch, tf.int64), 0]))
        else:
            fill = _NO_ID if name in (features.OWNER_ID, features.INFLUENCER_ID) else 0
            full[name] = tf.fill(tf.stack([batch, 1]), tf.constant(fill, spec.dtype))
    return full


class OwnerLookup(tf.Module):
    """Owner tables built from every row (models/owner_tables.served_tables), looked up in-graph.

    An owner outside them gets the fallback profile (Transform's global mean), count 0 and no hires.
    """

    def __init__(self, tables: Mapping[str, np.ndarray], fallback_profile: np.ndarray):
        super().__init__()
        owners = np.asarray(tables["owner_ids"], np.int64)
        self.owner_ids = tf.Variable(owners, trainable=False, name="served_owner_ids")  # row order; a catalog refresh rebuilds the tables from these
        self._row = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(owners), tf.range(len(owners), dtype=tf.int64)), default_value=len(owners)
        )
        self.profiles = tf.Variable(np.vstack([tables["profiles"], np.asarray(fallback_profile, np.float32).reshape(1, -1)]), trainable=False, name="served_profiles")
        self.counts = tf.Variable(np.append(tables["counts"], 0.0).astype(np.float32), trainable=False, name="served_counts")
        self.hires = tf.Variable(tables["hires"], trainable=False, name="served_hires")
        splits = np.asarray(tables["hire_splits"], np.int64)
        self.hire_splits = tf.Variable(np.append(splits, splits[-1]), trainable=False, name="served_hire_splits")  # the empty last row

    def hire_counts(self, owner_id: tf.Tensor) -> tf.Tensor:
        """[B] int64: each owner's distinct hires in these tables (0 for an owner outside them)."""
        row = self._row.lookup(tf.reshape(owner_id, [-1]))
        return tf.gather(self.hire_splits, row + 1) - tf.gather(self.hire_splits, row)

    def __call__(self, owner_id: tf.Tensor) -> Dict[str, tf.Tensor]:
        row = self._row.lookup(tf.reshape(owner_id, [-1]))
        profile = tf.gather(self.profiles, row)
        hires = tf.gather(tf.RaggedTensor.from_row_splits(self.hires, self.hire_splits, validate=False), row)
        return {
            features.OWNER_ID_KEY: tf.reshape(owner_id, [-1, 1]),
            features.OWNER_PROFILE_KEY: profile,
            features.QUERY_PROFILE_KEY: profile,  # serving: the whole history is the query
            features.OWNER_HISTORY_COUNT_KEY: tf.gather(self.counts, row),
            features.OWNER_HISTORY_KEY: hires.to_sparse(),
        }


class RecommenderModule(tf.Module):
    """Towers, transform graph and the embedded catalog, with serving signatures."""

    def __init__(
        self, model, tft_layer, raw_spec, catalog: Mapping[str, np.ndarray], catalog_embeddings: np.ndarray, mean_label: float,
        default_k: int, max_k: int, owners: OwnerLookup, tower_weight: float = 1.0, item_query: Optional[np.ndarray] = None,
        rating_calibration: Tuple[float, float] = (0.0, 1.0),
    ):
        """catalog_embeddings: [N, tower dim (+ item factor rank)]; owners: the owner tables this
        version serves (Transform's own cover the train split only); item_query: [N, rank] item
        factors summed over an owner's hires (models/hybrid.py), already weighted; None for towers only."""
        super().__init__()
        self.tft_layer = tft_layer
        self.query_tower = model.query_tower
        self.candidate_tower = model.candidate_tower
        self.rating_head = model.rating_head
        # serving_default predicts offset + scale * the head's output (models/validation.rating_calibration).
        self.rating_offset = tf.Variable(float(rating_calibration[0]), trainable=False, name="rating_offset")
        self.rating_scale = tf.Variable(float(rating_calibration[1]), trainable=False, name="rating_scale")
        self.tower_weight = tf.Variable(float(tower_weight), trainable=False, name="tower_weight")
        self.mean_label = tf.Variable(float(mean_label), trainable=False, name="mean_label")
        self._raw_spec = dict(raw_spec)
        tower_width = int(np.shape(catalog_embeddings)[1] - (0 if item_query is None else np.shape(item_query)[1]))
        self._init_catalog(catalog, catalog_embeddings, tower_width, default_k, max_k, owners, item_query, None)

    def _init_catalog(
        self, catalog: Mapping[str, np.ndarray], catalog_embeddings: np.ndarray, tower_width: int, default_k: int, max_k: int,
        owners: OwnerLookup, item_query: Optional[np.ndarray], factor_ids: Optional[np.ndarray],
    ) -> None:
        """The served catalog (ids, embeddings, filters) and the owners' side of the item factors.

        factor_ids: the influencers the rows of `item_query` belong to, when they are not the catalog's
        (a refreshed catalog, models/refresh.py: past hires keep their parts after they leave it); None: the catalog's.
        """
        self.owners = owners
        self.item_query = None if item_query is None else tf.Variable(np.asarray(item_query, np.float32), trainable=False, name="item_query")
        # Where the towers' part of an embedding ends and the item factors' begins (benchmarks read each part alone).
        self.tower_width = tf.Variable(int(tower_width), trainable=False, name="tower_width")
        self._default_k = int(min(default_k, len(catalog_embeddings)))
        ids = np.asarray(catalog[features.INFLUENCER_ID], np.int64)
        self.catalog_ids = tf.Variable(ids, trainable=False, name="catalog_ids")
        self.catalog_embeddings = tf.Variable(np.asarray(catalog_embeddings, np.float32), trainable=False, name="catalog_embeddings")
        self.filters = CatalogFilter(
            ids,
            price=catalog[features.PRICE],
            followers=np.stack([np.asarray(catalog[name], np.int64) for name in features.FOLLOWERS], axis=1),
            categories=[[c.decode() if isinstance(c, bytes) else c for c in names] for names in catalog[features.CATEGORIES]],
            max_k=max_k,
        )
        # Whose rows `item_query` holds; a refresh of this version (models/refresh.py) reads it.
        self.factor_ids = tf.Variable(ids if factor_ids is None else np.asarray(factor_ids, np.int64), trainable=False, name="factor_ids")
        self._factor_index = None
        if factor_ids is not None:
            self._factor_index = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(self.factor_ids.numpy(), tf.range(len(factor_ids), dtype=tf.int64)), default_value=-1
            )
        # TFMA's slices (transform_features): each influencer's popularity bucket from these owner tables' hires.
        hired = lookup(self.owners.hires.numpy(), ids)
        self.popularity_group = tf.Variable(groups_of_hire_counts(np.bincount(hired[hired >= 0], minlength=len(ids))), trainable=False, name="popularity_group")
        # Catalog attributes, for callers that show results.
        self.catalog_price = self.filters.price
        self.catalog_followers = self.filters.followers
        self.catalog_categories = tf.Variable(
            np.array([schema.CATEGORY_SEPARATOR.join(c) for c in catalog[features.CATEGORIES]], dtype=object).astype(bytes),
            trainable=False,
            name="catalog_categories",
        )

    # -- building blocks -------------------------------------------------
    def _transform(self, partial: Mapping[str, tf.Tensor], batch: tf.Tensor) -> Dict[str, tf.Tensor]:
        return self.tft_layer(complete_raw_features(partial, self._raw_spec, batch))

    def owner_inputs(self, owner_id: tf.Tensor) -> Dict[str, tf.Tensor]:
        """The query tower's owner inputs: profile, history (past hires), history count (0: an owner the model never saw)."""
        return self.owners(request_checks.non_negative(owner_id, OWNER_INPUT))

    def known_owner_inputs(self, owner_id: tf.Tensor) -> Dict[str, tf.Tensor]:
        """owner_inputs, refusing an owner the model never saw: its answer would be everyone's, not its own.

        The rule of every `recommend` signature and of batch scoring (which dead-letters such owners):
        a new brand asks `recommend_cold_start` with the categories and budget it wants.
        """
        inputs = self.owner_inputs(owner_id)
        count = inputs[features.OWNER_HISTORY_COUNT_KEY]
        known = tf.reshape(count, [-1]) > 0

        def message():  # built only when the check fails: no string work on the served path
            ids = tf.strings.reduce_join(tf.strings.as_string(tf.boolean_mask(owner_id, ~known)[:3]), separator=", ")
            return tf.strings.join(["owner_id ", ids, " has no hires in the data of this model (unknown owner); for a new brand use recommend_cold_start"])

        # A stateful check inside a tf.function always runs, whichever outputs the caller uses.
        return {**inputs, features.OWNER_HISTORY_COUNT_KEY: request_checks.checked_naming(count, known, message)}

    def factor_positions(self, influencer_ids: tf.Tensor) -> tf.Tensor:
        """Rows of `item_query` for these ids (-1: the item factors do not know them)."""
        return self.filters.index_of(influencer_ids) if self._factor_index is None else self._factor_index.lookup(influencer_ids)

    def query(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        """The served query: the weighted query tower, then the owner's hires' summed item factors."""
        towers = self.tower_weight * self.query_tower(inputs)
        if self.item_query is None:
            return towers
        history = inputs[features.OWNER_HISTORY_KEY]
        positions = self.factor_positions(history.values)
        known = positions >= 0
        summed = tf.math.unsorted_segment_sum(
            tf.gather(self.item_query, tf.boolean_mask(positions, known)),
            tf.cast(tf.boolean_mask(history.indices[:, 0], known), tf.int32),
            tf.shape(towers)[0],
        )
        return tf.concat([towers, summed], axis=1)

    def explained(self, inputs: Dict[str, tf.Tensor], query: tf.Tensor, result: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """`result` (the ranking of `query`, the served query of the owners of `inputs`) with the parts of each returned score (models/explain.py)."""
        positions = self.filters.index_of(result[IDS_KEY])
        ids = tf.where(positions >= 0, result[IDS_KEY], explain.EMPTY_ID)  # an id outside the catalog: an empty slot
        candidates = tf.gather(self.catalog_embeddings, tf.maximum(positions, 0))
        tower_query = query[:, : self.tower_width]  # the served query's own (weighted) tower part
        batch = tf.shape(ids)[0]
        if self.item_query is None:
            hire_ids = tf.fill(tf.stack([batch, 0]), tf.constant(explain.EMPTY_ID, tf.int64))
            hire_queries = tf.zeros(tf.stack([batch, 0, 0]), tf.float32)
        else:
            hires = tf.sparse.to_dense(inputs[features.OWNER_HISTORY_KEY], default_value=explain.EMPTY_ID)
            positions = self.factor_positions(hires)
            hire_ids = tf.where(positions >= 0, hires, explain.EMPTY_ID)  # only hires the item factors know carry a part
            hire_queries = tf.gather(self.item_query, tf.maximum(positions, 0)) * tf.cast(positions >= 0, tf.float32)[:, :, None]
        return {**result, **explain.explanations(ids, candidates, tower_query, self.tower_width, hire_ids, hire_queries)}

    def default_k(self, batch: tf.Tensor) -> tf.Tensor:
        return tf.fill(tf.reshape(batch, [1]), tf.constant(self._default_k, tf.int64))

    def rank(self, query: tf.Tensor, allowed: Allowed, k: tf.Tensor) -> Dict[str, tf.Tensor]:
        """Exact top-k over the whole catalog among the `allowed` influencers."""
        query = request_checks.checked(query, tf.math.is_finite(query), "the query embedding is not finite for these inputs")
        scores = tf.matmul(query, self.catalog_embeddings, transpose_b=True)
        qualified = allowed.count()
        ids, top_scores, filled = masked_top_k(scores, self.catalog_ids, allowed.dense(), k, count=qualified)
        return {IDS_KEY: ids, SCORE_KEY: top_scores, NUM_RESULTS_KEY: filled, NUM_QUALIFIED_KEY: qualified}

    def _filtered(self, query, past_hires, k, max_price, platform, min_followers, required_categories, exclude_ids):
        k = self.filters.checked_k(k)
        allowed = self.filters.mask(max_price, platform, min_followers, required_categories, exclude_ids, past_hires)
        return self.rank(query, Allowed.of_mask(self.filters, allowed), k)

    # -- signatures ------------------------------------------------------
    @served_function(tf.TensorSpec([None], tf.string, name="examples"))
    def serve_examples(self, examples):
        transformed = self.tft_layer(tf.io.parse_example(examples, self._raw_spec))
        query, candidate = self.query_tower(transformed), self.candidate_tower(transformed)
        return {"predictions": self.rating_offset + self.rating_scale * self.rating_head(query, candidate)}

    @served_function(tf.TensorSpec([None], tf.string, name="examples"))
    def transform_features(self, examples):
        """Transform's outputs of raw examples, and the two slicing keys of TFMA (models/slices.py's buckets)."""
        transformed = self.tft_layer(tf.io.parse_example(examples, self._raw_spec))
        dense = {k: v for k, v in transformed.items() if isinstance(v, tf.Tensor)}
        return {**dense, **self.slice_keys(transformed[features.OWNER_ID_KEY], transformed[features.INFLUENCER_ID_KEY])}

    def slice_keys(self, owner_id: tf.Tensor, influencer_id: tf.Tensor) -> Dict[str, tf.Tensor]:
        """Each row's owner history bucket (its distinct hires in this version's tables) and its influencer's popularity bucket."""
        hires = self.owners.hire_counts(owner_id)
        history = tf.where(hires == 0, tf.zeros_like(hires), tf.searchsorted(tf.constant(HISTORY_EDGES, tf.int64), hires, side="right", out_type=tf.int64) + 1)
        position = self.filters.index_of(tf.reshape(tf.cast(influencer_id, tf.int64), [-1]))
        popularity = tf.where(position >= 0, tf.gather(self.popularity_group, tf.maximum(position, 0)),
                              tf.constant(len(POPULARITY_LABELS), tf.int64))
        return {features.OWNER_HISTORY_BUCKET_KEY: tf.gather(tf.constant(history_labels()), history),
                features.INFLUENCER_POPULARITY_BUCKET_KEY: tf.gather(tf.constant([*POPULARITY_LABELS, OUTSIDE_CATALOG]), popularity)}

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT))
    def query_embedding(self, owner_id):
        inputs = self.owner_inputs(owner_id)
        # history_size 0: the model never saw this owner in training (fallback profile).
        return {
            EMBEDDING_KEY: self.query(inputs),
            HISTORY_SIZE_KEY: tf.cast(tf.reshape(inputs[features.OWNER_HISTORY_COUNT_KEY], [-1]), tf.int64),
        }

    def candidate_towers(self, inf_id, insta_follower, tiktok, youtube, price_normalized, categories) -> tf.Tensor:
        """The candidate tower's embedding of raw influencer features (the inputs of `candidate_embedding`)."""
        inf_id = request_checks.non_negative(inf_id, features.INFLUENCER_ID)
        insta_follower, tiktok, youtube = (request_checks.non_negative(v, n) for v, n in zip((insta_follower, tiktok, youtube), features.FOLLOWERS))
        price_normalized = request_checks.price(price_normalized, features.PRICE)
        raw = {
            features.INFLUENCER_ID: inf_id,
            **dict(zip(features.FOLLOWERS, (insta_follower, tiktok, youtube))),
            features.PRICE: price_normalized,
        }
        raw = {name: tf.reshape(value, [-1, 1]) for name, value in raw.items()}
        raw[features.CATEGORIES] = categories_to_sparse(categories)
        return self.candidate_tower(self._transform(raw, tf.shape(inf_id)[0]))

    @served_function(*CANDIDATE_SIGNATURE)
    def candidate_embedding(self, inf_id, insta_follower, tiktok, youtube, price_normalized, categories):
        towers = self.candidate_towers(inf_id, insta_follower, tiktok, youtube, price_normalized, categories)
        if self.item_query is None:
            return {EMBEDDING_KEY: towers}
        # The item factors of a catalog influencer; an id outside the catalog has none (zeros).
        positions = self.filters.index_of(inf_id)
        factors = tf.gather(self.catalog_embeddings[:, tf.shape(towers)[1] :], tf.maximum(positions, 0))
        factors *= tf.cast(positions >= 0, factors.dtype)[:, None]
        return {EMBEDDING_KEY: tf.concat([towers, factors], axis=1)}

    def _ranking(self, owner_id):
        """(owner inputs, served query, exact top-k at the default k, past hires excluded): what `recommend` serves."""
        inputs = self.known_owner_inputs(owner_id)
        batch = tf.shape(owner_id)[0]
        allowed = self.filters.allowed_except(inputs[features.OWNER_HISTORY_KEY], batch)
        query = self.query(inputs)
        return inputs, query, self.rank(query, allowed, self.default_k(batch))

    def _filtered_ranking(self, owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids):
        inputs = self.known_owner_inputs(owner_id)
        query = self.query(inputs)
        return inputs, query, self._filtered(query, inputs[features.OWNER_HISTORY_KEY], k, max_price, platform, min_followers, required_categories, exclude_ids)

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT))
    def recommend(self, owner_id):
        return self._ranking(owner_id)[2]

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT), *FILTER_SIGNATURE)
    def recommend_filtered(self, owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids):
        return self._filtered_ranking(owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids)[2]

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT))
    def recommend_explained(self, owner_id):
        return self.explained(*self._ranking(owner_id))

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT), *FILTER_SIGNATURE)
    def recommend_explained_filtered(self, owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids):
        return self.explained(*self._filtered_ranking(owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids))

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT), tf.TensorSpec([None, None], tf.int64, name=IDS_KEY))
    def explain(self, owner_id, influencer_id):
        """Why, for influencers already ranked (batch scoring's top-k, EMPTY_ID padding): recommend_explained's extra outputs."""
        inputs = self.known_owner_inputs(owner_id)
        explained = self.explained(inputs, self.query(inputs), {IDS_KEY: influencer_id})
        return {key: explained[key] for key in explain.EXPLANATION_KEYS}

    def cold_start_query(self, categories, budget):
        """A pseudo-profile: what an owner hiring only such influencers would have."""
        batch = tf.shape(budget)[0]
        budget = request_checks.price(budget, BUDGET_INPUT)
        raw = {features.CATEGORIES: categories_to_sparse(categories), features.PRICE: tf.reshape(budget, [-1, 1])}
        transformed = self._transform(raw, batch)
        item = transformed[features.INFLUENCER_FEATURES_KEY]
        fallback = transformed[features.OWNER_PROFILE_KEY]  # unknown owner: the global mean profile
        n_numeric = len(features.NUMERIC_FEATURE_NAMES)
        price = features.NUMERIC_FEATURE_NAMES.index(features.PRICE)
        inputs = dict(transformed)
        inputs[features.QUERY_PROFILE_KEY] = tf.concat(
            [
                fallback[:, :price],
                self.mean_label * item[:, price : price + 1],
                fallback[:, price + 1 : n_numeric],
                self.mean_label * item[:, n_numeric:],
            ],
            axis=1,
        )
        inputs[features.OWNER_HISTORY_KEY] = tf.sparse.SparseTensor(
            tf.zeros([0, 2], tf.int64), tf.zeros([0], tf.int64), tf.stack([tf.cast(batch, tf.int64), 0])
        )
        # No hires: only the towers speak, unweighted (with a blend share of 0 the weighted query would be all
        # zeros and every influencer tie); the item factors add nothing (a pseudo-history of popular influencers
        # with the declared categories did worse than most-popular on anime: BENCHMARKS.md).
        towers = self.query_tower(inputs)
        if self.item_query is None:
            return towers
        return tf.concat([towers, tf.zeros(tf.stack([batch, tf.shape(self.item_query)[1]]), towers.dtype)], axis=1)

    @served_function(*COLD_START_SIGNATURE)
    def recommend_cold_start(self, categories, budget):
        batch = tf.shape(budget)[0]
        nobody = tf.zeros(tf.stack([batch, 0]), tf.int64)  # a new owner has hired nobody
        return self.rank(self.cold_start_query(categories, budget), self.filters.allowed_except(nobody, batch), self.default_k(batch))

    @served_function(*COLD_START_SIGNATURE, *FILTER_SIGNATURE)
    def recommend_cold_start_filtered(self, categories, budget, k, max_price, platform, min_followers, required_categories, exclude_ids):
        query = self.cold_start_query(categories, budget)
        return self._filtered(query, None, k, max_price, platform, min_followers, required_categories, exclude_ids)

    @served_function(*COLD_START_SIGNATURE)
    def cold_start_embedding(self, categories, budget):
        return {EMBEDDING_KEY: self.cold_start_query(categories, budget)}

    def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            "serving_default": self.serve_examples.get_concrete_function(),
            "transform_features": self.transform_features.get_concrete_function(),
            "recommend": self.recommend.get_concrete_function(),
            "recommend_filtered": self.recommend_filtered.get_concrete_function(),
            "recommend_explained": self.recommend_explained.get_concrete_function(),
            "recommend_explained_filtered": self.recommend_explained_filtered.get_concrete_function(),
            "explain": self.explain.get_concrete_function(),
            "recommend_cold_start": self.recommend_cold_start.get_concrete_function(),
            "recommend_cold_start_filtered": self.recommend_cold_start_filtered.get_concrete_function(),
            "query_embedding": self.query_embedding.get_concrete_function(),
            "cold_start_embedding": self.cold_start_embedding.get_concrete_function(),
            "candidate_embedding": self.candidate_embedding.get_concrete_function(),
        }
