"""The Trainer's inputs come in one order whatever order Beam wrote the records in."""

import types

import numpy as np
import tensorflow as tf

from models import features
from models.examples import sorted_by
from models.owner_rows import read_rows


def test_sorted_by_reorders_every_column_and_keeps_ties_in_read_order():
    columns = {"id": np.array([3, 1, 2, 1]), "price": np.array([30.0, 10.0, 20.0, 11.0]), "tags": [("c",), ("a",), ("b",), ("a2",)]}
    got = sorted_by(columns, "id")
    assert got["id"].tolist() == [1, 1, 2, 3]
    assert got["price"].tolist() == [10.0, 11.0, 20.0, 30.0]
    assert got["tags"] == [("a",), ("a2",), ("b",), ("c",)]


def _accessor(batches):
    def factory(files, options, schema):
        return tf.data.Dataset.from_tensor_slices({k: [b[k] for b in batches] for k in batches[0]})

    return types.SimpleNamespace(tf_dataset_factory=factory)


def test_read_rows_gives_the_same_rows_in_any_record_order():
    owners, influencers = np.array([[2], [1], [2], [1]], np.int64), np.array([[5], [7], [4], [7]], np.int64)
    ratings = np.array([[1.0], [3.0], [2.0], [0.5]], np.float32)
    label_fn = lambda raw: raw["rating"] * 2.0

    def read(order):
        batch = {features.OWNER_ID: owners[order], features.INFLUENCER_ID: influencers[order], "rating": ratings[order]}
        return read_rows([], _accessor([batch]), None, label_fn)

    first, second = read([0, 1, 2, 3]), read([3, 2, 1, 0])
    for a, b in zip((first.owner_ids, first.influencer_ids, first.labels), (second.owner_ids, second.influencer_ids, second.labels)):
        np.testing.assert_array_equal(a, b)
    assert first.owner_ids.tolist() == [1, 1, 2, 2] and first.influencer_ids.tolist() == [7, 7, 4, 5]
    assert first.labels.tolist() == [1.0, 6.0, 4.0, 2.0]
