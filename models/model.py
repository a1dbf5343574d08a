"""The TensorFlow Recommenders two-tower model.

Query tower: the owner's profile (the notebook's feature), the bag of
influencers it hired, its history size and (optionally) an owner-id embedding.
Candidate tower: the influencer's features and (optionally) an id embedding.
Both end L2-normalised, like the notebook. Two tasks: in-batch-softmax
retrieval over the catalog (with the logQ correction, so popular influencers
are not over-penalised as negatives) and the notebook's rating regression.
"""

from typing import Dict, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from models import features
from models.config import ModelConfig


def _mlp(units: int, output_dim: int, name: str) -> tf.keras.Sequential:
    return tf.keras.Sequential(
        [tf.keras.layers.Dense(units, activation="relu"), tf.keras.layers.Dense(output_dim)], name=name
    )


def _ids(x: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tf.cast(x, tf.int64), [-1])


class IdEmbedding(tf.keras.layers.Layer):
    """Raw int64 ids -> vectors; ids outside the vocabulary share one OOV row."""

    def __init__(self, ids: Sequence[int], dim: int, name: str):
        super().__init__(name=name)
        self._lookup = tf.keras.layers.IntegerLookup(vocabulary=np.asarray(ids, np.int64), name=f"{name}_lookup")
        self._embedding = tf.keras.layers.Embedding(len(ids) + 1, dim, name=f"{name}_table")

    def call(self, ids):
        return self._embedding(self._lookup(ids))


class QueryTower(tf.keras.Model):
    """Owner -> unit vector, from Transform's query-side features."""

    def __init__(self, config: ModelConfig, owner_ids: Sequence[int], influencer_ids: Sequence[int]):
        super().__init__(name="query_tower")
        self._owner_embedding = (
            IdEmbedding(owner_ids, config.embedding_dim, "owner_embedding") if config.owner_id_embedding else None
        )
        self._history_embedding = IdEmbedding(influencer_ids, config.embedding_dim, "history_embedding")
        self._mlp = _mlp(config.hidden_units, config.embedding_dim, "query_mlp")

    def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        history = inputs[features.OWNER_HISTORY_KEY]
        if isinstance(history, tf.SparseTensor):
            history = tf.RaggedTensor.from_sparse(history)
        history_vectors = self._history_embedding(history)
        size = tf.cast(history.row_lengths(), tf.float32)[:, None]
        history_mean = tf.reduce_sum(history_vectors, axis=1) / tf.maximum(size, 1.0)
        parts = [
            tf.cast(inputs[features.QUERY_PROFILE_KEY], tf.float32),
            history_mean,
            tf.math.log1p(size),
        ]
        if self._owner_embedding is not None:
            parts.append(self._owner_embedding(_ids(inputs[features.OWNER_ID_KEY])))
        return tf.math.l2_normalize(self._mlp(tf.concat(parts, axis=1)), axis=1)


class CandidateTower(tf.keras.Model):
    """Influencer -> unit vector, from Transform's influencer features."""

    def __init__(self, config: ModelConfig, influencer_ids: Sequence[int]):
        super().__init__(name="candidate_tower")
        self._embedding = (
            IdEmbedding(influencer_ids, config.embedding_dim, "influencer_embedding") if config.influencer_id_embedding else None
        )
        self._mlp = _mlp(config.hidden_units, config.embedding_dim, "candidate_mlp")

    def call(self, inputs: Dict[str, tf.Tensor]) -> tf.Tensor:
        parts = [tf.cast(inputs[features.INFLUENCER_FEATURES_KEY], tf.float32)]
        if self._embedding is not None:
            parts.append(self._embedding(_ids(inputs[features.INFLUENCER_ID_KEY])))
        return tf.math.l2_normalize(self._mlp(tf.concat(parts, axis=1)), axis=1)


class RatingHead(tf.keras.Model):
    """Predicts the combined rating of an (owner, influencer) pair."""

    def __init__(self, config: ModelConfig):
        super().__init__(name="rating_head")
        self._mlp = _mlp(config.hidden_units // 2, 1, "rating_mlp")

    def call(self, query: tf.Tensor, candidate: tf.Tensor) -> tf.Tensor:
        return tf.squeeze(self._mlp(tf.concat([query, candidate, query * candidate], axis=1)), axis=1)


SAMPLING_PROBABILITY_KEY = "candidate_sampling_probability"


def negatives_mask(history: tf.SparseTensor, candidate_ids: tf.Tensor) -> tf.Tensor:
    """[queries, candidates]: False where the candidate is one of the query owner's other hires.

    In-batch negatives are other rows' positives; when such an influencer is
    one the owner also hired, calling it a negative teaches the model to push
    away what the owner likes (and evaluation never ranks past hires anyway).
    """
    unique_ids, slot = tf.unique(candidate_ids)
    order = tf.argsort(unique_ids)
    sorted_ids = tf.gather(unique_ids, order)
    position = tf.minimum(tf.searchsorted(sorted_ids, history.values), tf.size(sorted_ids) - 1)
    found = tf.equal(tf.gather(sorted_ids, position), history.values)
    rows = tf.boolean_mask(history.indices[:, 0], found)
    columns = tf.cast(tf.boolean_mask(tf.gather(order, position), found), tf.int64)
    hired = tf.scatter_nd(
        tf.stack([rows, columns], axis=1),
        tf.ones_like(rows, tf.int32),
        tf.stack([history.dense_shape[0], tf.size(unique_ids, out_type=tf.int64)]),
    )
    return tf.logical_not(tf.gather(hired, slot, axis=1) > 0)


class TwoTowerModel(tfrs.Model):
    def __init__(self, config: ModelConfig, owner_ids: Sequence[int], influencer_ids: Sequence[int]):
        super().__init__()
        self.config = config
        self.query_tower = QueryTower(config, owner_ids, influencer_ids)
        self.candidate_tower = CandidateTower(config, influencer_ids)
        self.rating_head = RatingHead(config)
        self.retrieval_task = tfrs.tasks.Retrieval(temperature=config.temperature, remove_accidental_hits=True)
        self.rating_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(), metrics=[tf.keras.metrics.RootMeanSquaredError(name="rating_rmse")]
        )

    def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        query = self.query_tower(inputs)
        candidate = self.candidate_tower(inputs)
        ids = _ids(inputs[features.INFLUENCER_ID_KEY])
        history = inputs[features.OWNER_HISTORY_KEY]
        if isinstance(history, tf.RaggedTensor):
            history = history.to_sparse()
        retrieval_loss = self.retrieval_task(
            query,
            candidate,
            candidate_sampling_probability=inputs.get(SAMPLING_PROBABILITY_KEY) if self.config.logq_correction else None,
            candidate_ids=ids,
            compute_metrics=False,
            score_mask=negatives_mask(history, ids) if self.config.mask_past_hires else None,
        )
        rating_loss = self.rating_task(
            labels=tf.reshape(inputs[features.LABEL_KEY], [-1]), predictions=self.rating_head(query, candidate)
        )
        return self.config.retrieval_weight * retrieval_loss + self.config.rating_weight * rating_loss
