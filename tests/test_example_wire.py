"""ExampleGen's hand-written example bytes equal the proto library's deterministic serialization (the oracle)."""

import numpy as np
import pytest
import tensorflow as tf

from components import example_wire
from components.interaction_example_gen import catalog_example, interaction_example, influencer_entries, influencer_segments
from data import records, schema
from models import features


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _float(value):
    return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def _oracle(influencer, row=None) -> bytes:
    feature = {
        features.INFLUENCER_ID: _int(getattr(influencer, schema.INFLUENCER_ID)),
        features.PRICE: _float(getattr(influencer, schema.PRICE)),
        features.CATEGORIES: tf.train.Feature(bytes_list=tf.train.BytesList(value=[c.encode("utf-8") for c in getattr(influencer, schema.CATEGORIES)])),
        **{name: _int(getattr(influencer, name)) for name in features.FOLLOWERS},
    }
    if row is not None:
        feature.update({features.OWNER_ID: _int(getattr(row, schema.OWNER_ID)), features.STAR_RATING: _int(getattr(row, schema.STAR_RATING)),
                        features.SENTIMENT: _float(getattr(row, schema.SENTIMENT))})
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


EDGE_INTS = [0, 1, 127, 128, 16_383, 16_384, 2**31, 2**63 - 1, -1, -2**63]
EDGE_FLOATS = [0.0, -0.0, 1.0, 0.1, 1e-45, 1e-38, 3.4028234e38, 1e39, -1e39, float("inf"), -float("inf")]
CATEGORIES = [(), ("Action",), ("Action", "Drama", "Slice of Life"), ("hip-hop", "électronique", "日本"), ("",), ("x" * 300,)]


def test_random_and_edge_records_serialize_as_the_proto_library_does():
    rng = np.random.default_rng(0)
    for n in range(400):
        ints = [int(v) for v in rng.choice(EDGE_INTS + [int(x) for x in rng.integers(-2**40, 2**40, 20)], 6)]
        floats = [float(v) for v in rng.choice(EDGE_FLOATS + list(rng.normal(0, 10, 20)), 2)]
        influencer = records.Influencer(ints[0], ints[1], ints[2], ints[3], floats[0], CATEGORIES[n % len(CATEGORIES)])
        row = records.Interaction(ints[4], ints[0], ints[5], floats[1])
        assert catalog_example(influencer) == _oracle(influencer)
        assert interaction_example(row, influencer) == _oracle(influencer, row)
        assert interaction_example(row, influencer_segments(influencer)) == _oracle(influencer, row)
        assert example_wire.merged(example_wire.segments(influencer_entries(influencer), []), []) == _oracle(influencer)


def test_the_bytes_parse_back_to_the_values():
    influencer, row = records.Influencer(7, 0, 20, 3, 0.5, ("Action", "Drama")), records.Interaction(3, 7, 4, 0.25)
    parsed = tf.train.Example.FromString(interaction_example(row, influencer)).features.feature
    assert parsed[features.INFLUENCER_ID].int64_list.value == [7] and parsed[features.OWNER_ID].int64_list.value == [3]
    assert parsed[features.CATEGORIES].bytes_list.value == [b"Action", b"Drama"]
    assert parsed[features.SENTIMENT].float_list.value == [0.25] and parsed[features.FOLLOWERS[0]].int64_list.value == [0]


def test_a_nan_is_written_as_the_proto_library_writes_it():
    assert example_wire.example([example_wire.float_entry("x", float("nan"))]) == tf.train.Example(
        features=tf.train.Features(feature={"x": _float(float("nan"))})).SerializeToString(deterministic=True)
