"""Pieces of the two-tower model that decide what it learns."""

import numpy as np
import tensorflow as tf

from models.model import negatives_mask


def test_past_hires_are_not_negatives():
    # Query 0's owner also hired 7 and 9; query 1's owner hired 5; query 2 none.
    history = tf.ragged.constant([[7, 9], [5], []], dtype=tf.int64).to_sparse()
    candidates = tf.constant([5, 7, 9, 7], tf.int64)
    mask = negatives_mask(history, candidates).numpy()
    np.testing.assert_array_equal(
        mask,
        [[True, False, False, False], [False, True, True, True], [True, True, True, True]],
    )


from models import features  # noqa: E402
from models.config import ModelConfig  # noqa: E402
from models.model import TwoTowerModel  # noqa: E402

OWNERS, INFLUENCERS, WIDTH = [1, 2, 3], [10, 11, 12, 13], 5


def _batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    return {
        features.OWNER_ID_KEY: tf.constant([[1], [2], [3], [1]], tf.int64),
        features.INFLUENCER_ID_KEY: tf.constant([[10], [11], [12], [13]], tf.int64),
        features.QUERY_PROFILE_KEY: tf.constant(rng.random((4, WIDTH)), tf.float32),
        features.INFLUENCER_FEATURES_KEY: tf.constant(rng.random((4, WIDTH)), tf.float32),
        features.OWNER_HISTORY_KEY: tf.ragged.constant([[13], [], [10], [10]], tf.int64).to_sparse(),
        features.LABEL_KEY: tf.constant([0.9, 0.2, 0.5, 0.7], tf.float32),
    }


def _model(**overrides) -> TwoTowerModel:
    tf.keras.utils.set_random_seed(0)
    return TwoTowerModel(ModelConfig(embedding_dim=8, hidden_units=16, **overrides), OWNERS, INFLUENCERS)


def test_towers_give_unit_vectors_of_the_embedding_width():
    model = _model(owner_id_embedding=True)
    batch = _batch()
    for tower in (model.query_tower, model.candidate_tower):
        vectors = tower(batch).numpy()
        assert vectors.shape == (4, 8)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    unknown = dict(batch, **{features.OWNER_ID_KEY: tf.constant([[99]] * 4, tf.int64)})
    assert np.isfinite(model.query_tower(unknown).numpy()).all()  # an owner outside the vocabulary shares the OOV row


def test_loss_is_the_weighted_sum_of_retrieval_and_rating():
    batch = _batch()
    both = float(_model().compute_loss(batch))
    retrieval = float(_model(rating_weight=0.0).compute_loss(batch))
    rating = float(_model(retrieval_weight=0.0).compute_loss(batch))
    assert retrieval > 0 and rating > 0
    np.testing.assert_allclose(both, retrieval + rating, rtol=1e-5)


def test_a_few_steps_on_a_tiny_batch_lower_the_loss():
    model = _model()
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    batch = _batch()
    before = float(model.compute_loss(batch))
    dataset = tf.data.Dataset.from_tensors(batch).repeat(30)
    model.fit(dataset, epochs=1, verbose=0)
    assert float(model.compute_loss(batch)) < before
