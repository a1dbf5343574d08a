"""The value ranges are defined once: data/schema.py, and schema.pbtxt says the same."""

import os

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from data import records, schema

SCHEMA_FILE = os.path.join(os.path.dirname(schema.__file__), "schema.pbtxt")


def _pbtxt_domains():
    proto = text_format.Parse(open(SCHEMA_FILE).read(), schema_pb2.Schema())
    domains = {}
    for feature in proto.feature:
        if feature.type == schema_pb2.INT:
            domain = feature.int_domain
            domains[feature.name] = (schema.INT, domain.min if domain.HasField("min") else None, domain.max if domain.HasField("max") else None)
        elif feature.type == schema_pb2.FLOAT:
            domain = feature.float_domain
            domains[feature.name] = (schema.FLOAT, domain.min if domain.HasField("min") else None, domain.max if domain.HasField("max") else None)
        else:
            count = feature.value_count
            domains[feature.name] = (schema.LABELS, count.min if count.HasField("min") else None, count.max if count.HasField("max") else None)
        assert feature.presence.min_fraction == 1.0, f"{feature.name}: every example must carry it"
    return domains


def test_schema_pbtxt_has_the_domains_of_data_schema():
    assert _pbtxt_domains() == schema.DOMAINS


def test_every_example_feature_is_a_csv_column():
    columns = set(schema.HISTORY_COLUMNS) | set(schema.INFLUENCER_COLUMNS) - {schema.INFLUENCER_ID}
    assert set(schema.DOMAINS) == columns


def test_row_checks_accept_the_bounds_and_refuse_just_outside():
    low, high = schema.STAR_MIN, schema.STAR_MAX
    ok = lambda star, sentiment: records.parse_history({"own_id": "1", "inf_id": "2", "star_rating": str(star), "sentiment_rating": str(sentiment)})
    assert ok(low, 0.0) and ok(high, 1.0)
    for star, sentiment in ((low - 1, 0.5), (high + 1, 0.5), (3, -0.01), (3, 1.01)):
        try:
            ok(star, sentiment)
        except records.FieldError:
            continue
        raise AssertionError(f"star {star}, sentiment {sentiment} passed")
