"""The exported SavedModel: stock TensorFlow ops only, so stock TF Serving loads it.

Signatures (inputs -> outputs):
- serving_default: serialized raw tf.Examples -> predicted combined rating (TFMA uses it)
- transform_features: serialized raw tf.Examples -> dense Transform outputs (TFMA's preprocessing)
- recommend: owner_id -> top-K influencer_id, score (brute force over the whole
  catalog; the owner's past hires excluded; unknown owners get the fallback profile)
- recommend_cold_start: categories (comma-joined), budget -> top-K, for owners with no history
- query_embedding: owner_id -> embedding, history_size (0 = owner unknown to the model); cold_start_embedding: categories, budget -> embedding
- candidate_embedding: raw influencer features -> embedding
"""

from typing import Dict, Mapping

import numpy as np
import tensorflow as tf

from data import schema
from models import features

OWNER_INPUT = "owner_id"  # the request field users send (REST: {"owner_id": 42})
SCORE_KEY = "score"
IDS_KEY = "influencer_id"
EMBEDDING_KEY = "embedding"
HISTORY_SIZE_KEY = "history_size"
_NO_ID = -1  # Fills raw id inputs a request does not have; matches no owner or influencer.
COLD_START_SIGNATURE = [
    tf.TensorSpec([None], tf.string, name=features.CATEGORIES),  # comma-joined, e.g. "Action,Drama"
    tf.TensorSpec([None], tf.float32, name="budget"),  # the price_normalized the owner aims at
]


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


def categories_to_sparse(joined: tf.Tensor) -> tf.SparseTensor:
    """'Action,Drama' strings -> [B, None] sparse labels (empty labels dropped)."""
    tokens = tf.strings.strip(tf.strings.split(joined, schema.CATEGORY_SEPARATOR))
    return tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, "")).to_sparse()


class RecommenderModule(tf.Module):
    """Towers, transform graph and the embedded catalog, with serving signatures."""

    def __init__(self, model, tft_layer, raw_spec, catalog: Mapping[str, np.ndarray], catalog_embeddings: np.ndarray, mean_label: float, default_k: int):
        super().__init__()
        self.tft_layer = tft_layer
        self.query_tower = model.query_tower
        self.candidate_tower = model.candidate_tower
        self.rating_head = model.rating_head
        self._raw_spec = dict(raw_spec)
        self._k = int(min(default_k, len(catalog_embeddings)))
        ids = np.asarray(catalog[features.INFLUENCER_ID], np.int64)
        self.catalog_ids = tf.Variable(ids, trainable=False, name="catalog_ids")
        self.catalog_embeddings = tf.Variable(np.asarray(catalog_embeddings, np.float32), trainable=False, name="catalog_embeddings")
        # Catalog attributes, for callers that show or filter results.
        self.catalog_price = tf.Variable(np.asarray(catalog[features.PRICE], np.float32), trainable=False, name="catalog_price")
        self.catalog_followers = tf.Variable(
            np.stack([np.asarray(catalog[name], np.int64) for name in features.FOLLOWERS], axis=1), trainable=False, name="catalog_followers"
        )
        self.catalog_categories = tf.Variable(
            np.array([schema.CATEGORY_SEPARATOR.join(c) for c in catalog[features.CATEGORIES]], dtype=object).astype(bytes),
            trainable=False,
            name="catalog_categories",
        )
        self._index_of = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(ids), tf.range(len(ids), dtype=tf.int64)), default_value=-1
        )
        self.mean_label = tf.Variable(float(mean_label), trainable=False, name="mean_label")

    # -- building blocks -------------------------------------------------
    def _transform(self, partial: Mapping[str, tf.Tensor], batch: tf.Tensor) -> Dict[str, tf.Tensor]:
        return self.tft_layer(complete_raw_features(partial, self._raw_spec, batch))

    def _owner_inputs(self, owner_id: tf.Tensor) -> Dict[str, tf.Tensor]:
        return self._transform({features.OWNER_ID: tf.reshape(owner_id, [-1, 1])}, tf.shape(owner_id)[0])

    def _top_k(self, query: tf.Tensor, exclude: tf.SparseTensor = None) -> Dict[str, tf.Tensor]:
        scores = tf.matmul(query, self.catalog_embeddings, transpose_b=True)
        if exclude is not None:
            positions = self._index_of.lookup(exclude.values)
            known = positions >= 0
            rows = tf.boolean_mask(exclude.indices[:, 0], known)
            cols = tf.boolean_mask(positions, known)
            scores = tf.tensor_scatter_nd_update(
                scores, tf.stack([rows, cols], axis=1), tf.fill(tf.shape(rows), tf.constant(-np.inf, tf.float32))
            )
        top = tf.math.top_k(scores, k=self._k)
        return {IDS_KEY: tf.gather(self.catalog_ids, top.indices), SCORE_KEY: top.values}

    # -- signatures ------------------------------------------------------
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        transformed = self.tft_layer(tf.io.parse_example(examples, self._raw_spec))
        query, candidate = self.query_tower(transformed), self.candidate_tower(transformed)
        return {"predictions": self.rating_head(query, candidate)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples):
        transformed = self.tft_layer(tf.io.parse_example(examples, self._raw_spec))
        return {k: v for k, v in transformed.items() if isinstance(v, tf.Tensor)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=OWNER_INPUT)])
    def query_embedding(self, owner_id):
        inputs = self._owner_inputs(owner_id)
        # history_size 0: the model never saw this owner in training (fallback profile).
        return {
            EMBEDDING_KEY: self.query_tower(inputs),
            HISTORY_SIZE_KEY: tf.cast(tf.reshape(inputs[features.OWNER_HISTORY_COUNT_KEY], [-1]), tf.int64),
        }

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int64, name=features.INFLUENCER_ID),
            *[tf.TensorSpec([None], tf.int64, name=name) for name in features.FOLLOWERS],
            tf.TensorSpec([None], tf.float32, name=features.PRICE),
            tf.TensorSpec([None], tf.string, name=features.CATEGORIES),
        ]
    )
    def candidate_embedding(self, inf_id, insta_follower, tiktok, youtube, price_normalized, categories):
        raw = {
            features.INFLUENCER_ID: inf_id,
            **dict(zip(features.FOLLOWERS, (insta_follower, tiktok, youtube))),
            features.PRICE: price_normalized,
        }
        raw = {name: tf.reshape(value, [-1, 1]) for name, value in raw.items()}
        raw[features.CATEGORIES] = categories_to_sparse(categories)
        return {EMBEDDING_KEY: self.candidate_tower(self._transform(raw, tf.shape(inf_id)[0]))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=OWNER_INPUT)])
    def recommend(self, owner_id):
        inputs = self._owner_inputs(owner_id)
        return self._top_k(self.query_tower(inputs), exclude=inputs[features.OWNER_HISTORY_KEY])

    def _cold_start_query(self, categories, budget):
        """A pseudo-profile: what an owner hiring only such influencers would have."""
        batch = tf.shape(budget)[0]
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
        return self.query_tower(inputs)

    @tf.function(input_signature=COLD_START_SIGNATURE)
    def recommend_cold_start(self, categories, budget):
        return self._top_k(self._cold_start_query(categories, budget))

    @tf.function(input_signature=COLD_START_SIGNATURE)
    def cold_start_embedding(self, categories, budget):
        return {EMBEDDING_KEY: self._cold_start_query(categories, budget)}

    def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
        return {
            "serving_default": self.serve_examples.get_concrete_function(),
            "transform_features": self.transform_features.get_concrete_function(),
            "recommend": self.recommend.get_concrete_function(),
            "recommend_cold_start": self.recommend_cold_start.get_concrete_function(),
            "query_embedding": self.query_embedding.get_concrete_function(),
            "cold_start_embedding": self.cold_start_embedding.get_concrete_function(),
            "candidate_embedding": self.candidate_embedding.get_concrete_function(),
        }
