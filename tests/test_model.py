"""Pieces of the two-tower model that decide what it learns."""

import numpy as np
import pytest
import tensorflow as tf

from models import features, tower_batches
from models.config import ModelConfig
from models.model import EXCLUDED, LOSS_PER_OWNER, PAIR_ITEM, PAIR_OWNER, PAIR_WEIGHT, TwoTowerModel, negatives_mask
from models.owner_rows import OwnerRows, Rows


def test_past_hires_are_not_negatives():
    # Query 0's owner also hired 7 and 9; query 1's owner hired 5; query 2 none.
    history = tf.ragged.constant([[7, 9], [5], []], dtype=tf.int64).to_sparse()
    candidates = tf.constant([5, 7, 9, 7], tf.int64)
    mask = negatives_mask(history, candidates).numpy()
    np.testing.assert_array_equal(
        mask,
        [[True, False, False, False], [False, True, True, True], [True, True, True, True]],
    )


CATALOG = np.array([10, 11, 12, 13, 14, 15])
FEATURES = np.random.default_rng(0).random((6, 5)).astype(np.float32)
# Owner 1 hired 10-13, owner 2 hired 12-15, owner 3 only 10 (too few to split: never a training owner).
ROWS = Rows(np.array([1, 1, 1, 1, 2, 2, 2, 2, 3]), np.array([10, 11, 12, 13, 12, 13, 14, 15, 10]), np.linspace(0.2, 1.0, 9).astype(np.float32))


def _owners() -> OwnerRows:
    return OwnerRows(ROWS, CATALOG)


def _model(**overrides) -> TwoTowerModel:
    tf.keras.utils.set_random_seed(0)
    return TwoTowerModel(ModelConfig(embedding_dim=8, hidden_units=16, **overrides), [1, 2, 3], CATALOG, FEATURES)


def _batch(seed: int = 0):
    return next(tower_batches.batches(_owners(), FEATURES, 0.5, 8, seed))


def test_batches_split_each_owner_into_input_and_targets_anew_each_pass():
    owners = _owners()
    splits = []
    for seed in range(6):
        batch = _batch(seed)
        assert sorted(set(batch[PAIR_OWNER].tolist())) == [0, 1]  # owner 3 has a single hire
        for row in range(2):
            owner = owners.index_of(batch[features.OWNER_ID_KEY][row])[0]
            targets = CATALOG[batch[PAIR_ITEM][batch[PAIR_OWNER] == row]]
            inputs = batch[features.OWNER_HISTORY_KEY][row]
            inputs = inputs[inputs >= 0]
            hired = CATALOG[owners.hire_positions(owner)]
            assert len(targets) >= 1 and len(inputs) >= 1
            assert sorted([*targets, *inputs]) == sorted(hired) and not set(targets) & set(inputs)
            assert sorted(CATALOG[batch[EXCLUDED][row][batch[EXCLUDED][row] >= 0]]) == sorted(hired)
            splits.append(tuple(sorted(targets)))
    assert len(set(splits)) > 2  # new splits each pass


def test_the_query_profile_is_the_mean_of_the_inputs_features_times_label():
    batch = _batch()
    owners = _owners()
    inputs = batch[features.OWNER_HISTORY_KEY][0]
    inputs = inputs[inputs >= 0]
    owner_rows = ROWS.owner_ids == batch[features.OWNER_ID_KEY][0, 0]
    chosen = owner_rows & np.isin(ROWS.influencer_ids, inputs)
    positions = np.searchsorted(CATALOG, ROWS.influencer_ids[chosen])
    expected = (FEATURES[positions] * ROWS.labels[chosen, None]).mean(axis=0)
    np.testing.assert_allclose(batch[features.QUERY_PROFILE_KEY][0], expected, rtol=1e-5)
    assert owners.profiles(FEATURES).shape == (3, 5)


def test_towers_give_unit_vectors_of_the_embedding_width():
    model = _model(owner_id_embedding=True)
    batch = {k: tf.constant(v) for k, v in _batch().items()}
    assert model.query_tower(batch).shape == (2, 8)
    assert model.catalog_embeddings().shape == (6, 8)
    np.testing.assert_allclose(np.linalg.norm(model.catalog_embeddings().numpy(), axis=1), 1.0, rtol=1e-5)


def test_loss_is_the_weighted_sum_of_retrieval_and_rating():
    batch = {k: tf.constant(v) for k, v in _batch().items()}
    both = float(_model().compute_loss(batch))
    retrieval = float(_model(rating_weight=0.0).compute_loss(batch))
    rating = float(_model(retrieval_weight=0.0).compute_loss(batch))
    assert retrieval > 0 and rating > 0
    np.testing.assert_allclose(both, retrieval + rating, rtol=1e-5)


def test_the_retrieval_loss_is_each_positive_against_the_catalog_less_its_owners_hires():
    """A numpy oracle: Σ weight x −log softmax of the positive among itself and every influencer its owner never hired."""
    model = _model(rating_weight=0.0)
    batch = {k: tf.constant(v) for k, v in _batch().items()}
    query = model.query_tower(batch).numpy()
    catalog = model.catalog_embeddings().numpy()
    expected = 0.0
    for owner, positive, weight in zip(batch[PAIR_OWNER].numpy(), batch[PAIR_ITEM].numpy(), batch[PAIR_WEIGHT].numpy()):
        hired = set(batch[EXCLUDED].numpy()[owner]) - {-1}
        logits = query[owner] @ catalog.T / model.config.temperature
        others = [j for j in range(len(CATALOG)) if j not in hired]
        expected += weight * -(logits[positive] - np.logaddexp.reduce(logits[[positive, *others]]))
    np.testing.assert_allclose(float(model.compute_loss(batch)), expected, rtol=1e-5)


def test_training_on_owner_batches_lowers_the_loss():
    model = _model()
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    batch = {k: tf.constant(v) for k, v in _batch().items()}
    before = float(model.compute_loss(batch))
    model.fit(tower_batches.dataset(_owners(), FEATURES, 0.5, 8, 0), steps_per_epoch=30, epochs=1, verbose=0)
    assert float(model.compute_loss(batch)) < before


def test_the_epoch_loss_is_the_mean_per_owner_over_the_epoch_not_the_last_steps():
    model = _model()
    model.compile(optimizer=tf.keras.optimizers.SGD(0.0))  # no update: every step scores the same model
    # A pass's last batch holds the remainder of its owners, so its summed loss is smaller: here 2 owners, then 1 and 1.
    steps = [*tower_batches.batches(_owners(), FEATURES, 0.5, 2, 0), *tower_batches.batches(_owners(), FEATURES, 0.5, 1, 1)]
    owners = [len(step[EXCLUDED]) for step in steps]
    losses = [float(model.compute_loss({k: tf.constant(v) for k, v in step.items()})) for step in steps]
    assert owners == [2, 1, 1]
    fed = tf.data.Dataset.from_generator(lambda: iter(steps), output_signature=tower_batches.signature(FEATURES.shape[1]))
    logs = model.fit(fed, epochs=1, verbose=0).history
    assert logs[LOSS_PER_OWNER][0] == pytest.approx(sum(losses) / sum(owners), rel=1e-5)
    assert logs["loss"][0] == pytest.approx(losses[-1], rel=1e-5)  # TFRS's own: the last step's


def test_past_the_softmax_limit_a_sample_of_the_catalog_is_scored(monkeypatch):
    from models import model as model_module

    monkeypatch.setattr(model_module, "MAX_SOFTMAX_ITEMS", 3)
    batch = {k: tf.constant(v) for k, v in _batch().items()}
    loss = float(_model().compute_loss(batch))
    assert np.isfinite(loss) and loss > 0


def test_past_the_softmax_limit_the_id_tables_train_by_row_updates_and_the_loss_still_falls(monkeypatch):
    from models import model as model_module

    monkeypatch.setattr(model_module, "MAX_SOFTMAX_ITEMS", 3)
    model = _model(owner_id_embedding=True)
    batch = {k: tf.constant(v) for k, v in _batch().items()}
    before = float(model.compute_loss(batch))
    optimizer = model_module.optimizer(model.config, model, len(CATALOG))
    model.compile(optimizer=optimizer)
    model.fit(tower_batches.dataset(_owners(), FEATURES, 0.5, 8, 0), steps_per_epoch=30, epochs=1, verbose=0)
    assert float(model.compute_loss(batch)) < before
    (sparse, tables), (dense, rest) = optimizer._optimizers_and_vars
    names = sorted(v.name.split("/")[-2] for v in tables())
    assert isinstance(sparse, tf.keras.optimizers.legacy.Adagrad) and names == ["history_embedding_table", "influencer_embedding_table", "owner_embedding_table"]
    assert len(tables()) + len(rest()) == len(model.trainable_variables)  # every weight trained, by one optimizer each
    # At or below the limit: Adam on every weight, as before.
    assert isinstance(model_module.optimizer(model.config, model, 3), tf.keras.optimizers.Adam)
