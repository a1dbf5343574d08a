"""The report's data views, from TFDV statistics of small frames: every split, ids as unique counts, TFDV's drift."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from data import schema
from runs import charts, data_views

SCHEMA_FILE = os.path.join(os.path.dirname(schema.__file__), "schema.pbtxt")


@pytest.fixture(scope="module")
def statistics_dir(tmp_path_factory):
    import tensorflow_data_validation as tfdv

    root = tmp_path_factory.mktemp("statistics")
    rng = np.random.default_rng(0)
    loaded = tfdv.load_schema_text(SCHEMA_FILE)
    options = tfdv.StatsOptions(schema=loaded)
    for split, shift in (("eval", 0.3), ("train", 0.0), ("catalog", 0.0)):  # written out of order on purpose
        n = 400
        frame = pd.DataFrame({
            schema.OWNER_ID: rng.integers(0, 40, n), schema.HISTORY_INFLUENCER_ID: rng.integers(0, 90, n),
            schema.PRICE: np.clip(rng.normal(0.3 + shift, 0.05, n), 0, 1), schema.STAR_RATING: rng.integers(1, 6, n),
        })
        stats = tfdv.generate_statistics_from_dataframe(frame, stats_options=options)
        os.makedirs(root / f"Split-{split}")
        (root / f"Split-{split}" / "FeatureStats.pb").write_bytes(stats.SerializeToString())  # as StatisticsGen writes it
    schema_dir = root / "schema"
    schema_dir.mkdir()
    shutil.copy(SCHEMA_FILE, schema_dir / "schema.pbtxt")
    return str(root)


def test_every_split_in_order_and_ids_as_unique_counts(statistics_dir):
    statistics = data_views.load(statistics_dir)
    assert list(statistics) == ["train", "eval", "catalog"]
    header, rows = data_views.feature_rows(statistics)
    cell = lambda row, column: row[header.index(column)]
    ids = [r for r in rows if r[0] == schema.OWNER_ID and r[1] == "train"][0]
    assert cell(ids, "unique") == "40" and cell(ids, "mean") == ""  # no mean of an id
    price = [r for r in rows if r[0] == schema.PRICE and r[1] == "eval"][0]
    assert 0.55 < float(cell(price, "median")) < 0.65 and cell(price, "zeros") == "0.0%"
    assert set(data_views.histograms(statistics)) == {schema.PRICE, schema.STAR_RATING}  # numbers only, not ids
    svg = charts.histogram_panels(data_views.histograms(statistics), list(statistics), "Numeric features")
    assert f">{schema.PRICE}</text>" in svg and f">{schema.OWNER_ID}</text>" not in svg
    assert svg.count("<polyline") == 2 * 3  # each feature, each split


def test_drift_uses_tfdv_measures_and_flags_the_shifted_feature(statistics_dir):
    statistics = data_views.load(statistics_dir)
    header, rows = data_views.drift_rows(statistics, os.path.join(statistics_dir, "schema"))
    by_feature = {r[0]: r for r in rows}
    assert by_feature[schema.PRICE][1] == "Jensen-Shannon divergence" and by_feature[schema.PRICE][-1] == "large"
    assert by_feature[schema.OWNER_ID][1] == "L-infinity distance"  # an id is categorical
    assert by_feature[schema.STAR_RATING][-1] == "small"
    assert data_views.drift_rows(statistics, None)[1] == []  # no schema recorded: no drift table, no guess
