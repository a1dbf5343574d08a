"""The TensorFlow Recommenders two-tower model.

Query tower: the owner's profile (the notebook's feature), the bag of
influencers it hired, its history size and (optionally) an owner-id embedding.
Candidate tower: the influencer's features and (optionally) an id embedding.
Both end L2-normalised, like the notebook. Two tasks on owner batches
(models/tower_batches.py: part of each owner's hires is the input, the rest
are the targets, as an owner is later served and evaluated): retrieval with a
softmax over the whole catalog (a uniform sample of it past
MAX_SOFTMAX_ITEMS, with the sampling correction), the owner's other hires
never its negatives; and the notebook's rating regression on the targets.
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


# Keys of an owner batch beside the query tower's inputs (models/tower_batches.py builds them).
PAIR_OWNER = "pair_owner"  # int32 [pairs]: the batch row of each (owner, target) pair
PAIR_ITEM = "pair_item"  # int32 [pairs]: the target's catalog position
PAIR_LABEL = "pair_label"  # float32 [pairs]: its combined rating
PAIR_WEIGHT = "pair_weight"  # float32 [pairs]: 1 / the owner's targets, so every owner counts the same
EXCLUDED = "excluded"  # int32 [owners, width], -1 padded: every catalog position the owner hired
# The epoch's loss as fit reports it: the summed loss over the owners it saw, per owner.
LOSS_PER_OWNER = "loss_per_owner"


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
        elif not isinstance(history, tf.RaggedTensor):  # training batches: ids padded with -1
            history = tf.RaggedTensor.from_tensor(history, padding=-1)
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


# Past this many influencers the softmax runs over a uniform sample of that size per batch, and a step
# touches a small part of the id tables.
MAX_SOFTMAX_ITEMS = 20_000
# The id tables' rate there (Adagrad): TFRS's tutorials train whole models with Adagrad at 0.1.
SPARSE_LEARNING_RATE = 0.1


def optimizer(config: ModelConfig, model: tf.keras.Model, catalog_size: int) -> tf.keras.optimizers.Optimizer:
    """Adam; past MAX_SOFTMAX_ITEMS influencers, Adagrad on the id tables, whose sparse update touches only a step's rows.

    Adam decays both moments of every row of a table every step: at 1M influencers a 1M x 64 table cost
    2.1 s a step that way, against 0.03 s with Adagrad's row updates.
    """
    if catalog_size <= MAX_SOFTMAX_ITEMS:
        return tf.keras.optimizers.Adam(config.learning_rate)

    def tables():
        return [v for layer in model.submodules if isinstance(layer, tf.keras.layers.Embedding) for v in layer.trainable_variables]

    def rest():
        sparse = {v.ref() for v in tables()}
        return [v for v in model.trainable_variables if v.ref() not in sparse]

    return tfrs.experimental.optimizers.CompositeOptimizer([
        (tf.keras.optimizers.legacy.Adagrad(SPARSE_LEARNING_RATE), tables),
        (tf.keras.optimizers.legacy.Adam(config.learning_rate), rest),
    ])


# The logit of a masked-out negative (TFRS's own value): far below any real one, and finite, so no NaN.
MASKED_LOGIT = float(np.finfo(np.float32).min) / 100.0


def softmax_loss(positive: tf.Tensor, negatives: tf.Tensor, allowed: tf.Tensor, weights: tf.Tensor, negative_log_q: float = 0.0) -> tf.Tensor:
    """Σ weight x −log softmax of each pair's positive logit against its allowed negatives' logits.

    `positive` [pairs], `negatives` and `allowed` [pairs, candidates]; the negatives' logits are corrected by
    −log of their sampling probability (logQ; 0 when they are the whole catalog). This is TFRS's Retrieval
    loss with each pair's positive as a column of its own: the task puts every pair's positive in a [pairs,
    pairs] in-batch block, which the owner masks then throw away; on anime that block and its accidental-hit
    check were half of a training step (0.80 -> 0.41 s, the same losses; BENCHMARKS Round 15).
    """
    logits = tf.concat([positive[:, None], tf.where(allowed, negatives - negative_log_q, MASKED_LOGIT)], axis=1)
    labels = tf.zeros(tf.shape(logits)[:1], tf.int32)  # the positive is column 0
    return tf.reduce_sum(weights * tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def negatives_mask(history: tf.SparseTensor, candidate_ids: tf.Tensor) -> tf.Tensor:
    """[queries, candidates]: False where the candidate is one of the query owner's hires (`history`)."""
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
    """The towers and the rating head, trained on owner batches against the catalog's transformed features."""

    def __init__(self, config: ModelConfig, owner_ids: Sequence[int], catalog_ids: Sequence[int], catalog_features: np.ndarray):
        super().__init__()
        self.config = config
        self.query_tower = QueryTower(config, owner_ids, catalog_ids)
        self.candidate_tower = CandidateTower(config, catalog_ids)
        self.rating_head = RatingHead(config)
        self.rating_task = tfrs.tasks.Ranking(
            loss=tf.keras.losses.MeanSquaredError(), metrics=[tf.keras.metrics.RootMeanSquaredError(name="rating_rmse")]
        )
        # Training inputs, not weights: kept out of the checkpointed state.
        self._catalog = {
            features.INFLUENCER_ID_KEY: tf.constant(np.asarray(catalog_ids, np.int64).reshape(-1, 1)),
            features.INFLUENCER_FEATURES_KEY: tf.constant(np.asarray(catalog_features, np.float32)),
        }
        self._catalog_size = len(catalog_ids)
        # TFRS's train_step reports the last step's loss as the epoch's, and the last batch of a pass is
        # the remainder (on anime 61 owners of 256): this mean over the epoch is comparable between epochs.
        self.loss_per_owner = tf.keras.metrics.Mean(name=LOSS_PER_OWNER)

    # Keras traces the training step with autograph, which rewrites the source of every call it reaches: 88% of
    # the 24-25 s that tracing the step took on anime (py-spy). Nothing in the step branches on a tensor, so it
    # is traced as plain Python, as the served functions are (models.serving.served_function): 5 s.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        return super().train_step(inputs)

    def catalog_embeddings(self, positions: tf.Tensor = None) -> tf.Tensor:
        """The candidate tower on catalog rows (all of them, or those at `positions`)."""
        inputs = self._catalog if positions is None else {k: tf.gather(v, positions) for k, v in self._catalog.items()}
        return self.candidate_tower(inputs)

    def compute_loss(self, inputs: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        query = self.query_tower(inputs)
        pair_query = tf.gather(query, inputs[PAIR_OWNER])
        positives = inputs[PAIR_ITEM]
        sample = min(self._catalog_size, MAX_SOFTMAX_ITEMS)
        if sample == self._catalog_size:  # the whole catalog already holds every positive: one tower pass
            negatives = tf.range(self._catalog_size, dtype=tf.int32)
            negative = self.catalog_embeddings()
            positive = tf.gather(negative, positives)
        else:
            negatives = tf.random.uniform([sample], 0, self._catalog_size, dtype=tf.int32)
            candidates = self.catalog_embeddings(tf.concat([positives, negatives], axis=0))
            n_pairs = tf.shape(positives)[0]
            positive, negative = candidates[:n_pairs], candidates[n_pairs:]
        # A pair's own positive against the catalog (or its sample) minus everything its owner hired.
        excluded = tf.RaggedTensor.from_tensor(inputs[EXCLUDED], padding=-1).to_sparse()
        allowed = tf.gather(negatives_mask(excluded, negatives), inputs[PAIR_OWNER])
        retrieval_loss = softmax_loss(
            tf.reduce_sum(pair_query * positive, axis=1) / self.config.temperature,
            tf.matmul(pair_query, negative, transpose_b=True) / self.config.temperature,
            allowed,
            inputs[PAIR_WEIGHT],
            negative_log_q=float(np.log(sample / self._catalog_size)),
        )
        rating_loss = self.rating_task(labels=inputs[PAIR_LABEL], predictions=self.rating_head(pair_query, positive))
        loss = self.config.retrieval_weight * retrieval_loss + self.config.rating_weight * rating_loss
        owners = tf.cast(tf.shape(query)[0], tf.float32)
        self.loss_per_owner.update_state(loss / owners, sample_weight=owners)
        return loss
