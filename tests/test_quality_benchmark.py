"""The quality benchmark compares models by influencer id, never by catalog position."""

import types

import numpy as np
import pytest

from benchmarks.quality import catalog_embeddings


def _model(ids, embeddings):
    value = lambda array: types.SimpleNamespace(numpy=lambda: np.asarray(array))
    return types.SimpleNamespace(catalog_ids=value(ids), catalog_embeddings=value(embeddings))


def test_two_runs_with_the_catalog_in_other_orders_score_the_same():
    ids = np.array([40, 10, 30, 20], np.int64)
    embeddings = np.arange(8, dtype=np.float32).reshape(4, 2)
    order = np.array([2, 0, 3, 1])
    first, second = _model(ids, embeddings), _model(ids[order], embeddings[order])  # the same model, shards read in another order
    np.testing.assert_array_equal(catalog_embeddings(second, ids), embeddings)
    np.testing.assert_array_equal(catalog_embeddings(first, ids), embeddings)


def test_models_of_different_catalogs_are_refused():
    with pytest.raises(ValueError, match="do not share one catalog"):
        catalog_embeddings(_model([1, 2, 3], np.zeros((3, 2))), np.array([1, 2, 4]))
