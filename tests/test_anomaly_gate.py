"""The gate between ExampleValidator and Transform."""

import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.anomaly_gate import ANOMALIES_FILE, DataAnomaliesError, check_anomalies, describe_anomalies


def _write(uri: str, split: str, anomalies: anomalies_pb2.Anomalies) -> None:
    folder = os.path.join(uri, f"Split-{split}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ANOMALIES_FILE), "wb") as handle:
        handle.write(anomalies.SerializeToString())


def test_clean_splits_pass(tmp_path):
    _write(str(tmp_path), "train", anomalies_pb2.Anomalies())
    _write(str(tmp_path), "eval", anomalies_pb2.Anomalies())
    assert describe_anomalies(str(tmp_path), ["train", "eval"]) == []
    assert check_anomalies(str(tmp_path), ["train", "eval"]) is None


def test_a_dataset_level_anomaly_stops_the_run_too(tmp_path):
    anomalies = anomalies_pb2.Anomalies()
    anomalies.dataset_anomaly_info.short_description = "Low num examples in dataset."
    anomalies.dataset_anomaly_info.description = "The dataset has 0 examples."
    _write(str(tmp_path), "train", anomalies)
    with pytest.raises(DataAnomaliesError, match="split train, dataset: Low num examples in dataset.: The dataset has 0 examples."):
        check_anomalies(str(tmp_path), ["train"])


def test_anomalies_stop_the_run_naming_split_and_feature(tmp_path):
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.anomaly_info["star_rating"]
    info.short_description = "Out-of-range values"
    info.description = "Unexpectedly large value: 9."
    _write(str(tmp_path), "train", anomalies_pb2.Anomalies())
    _write(str(tmp_path), "eval", anomalies)
    with pytest.raises(DataAnomaliesError) as raised:
        check_anomalies(str(tmp_path), ["train", "eval"])
    message = str(raised.value)
    assert "split eval, feature star_rating: Out-of-range values: Unexpectedly large value: 9." in message
    assert "train" not in message.split("\n", 1)[1]


# DistributionValidator (TFX's executor, the schema's drift thresholds) on small real statistics, then the gate.

def _statistics(uri, frame):
    import tensorflow_data_validation as tfdv
    from tfx.types import artifact_utils, standard_artifacts

    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(uri)
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    os.makedirs(os.path.join(uri, "Split-train"))
    with open(os.path.join(uri, "Split-train", "FeatureStats.pb"), "wb") as handle:
        handle.write(tfdv.generate_statistics_from_dataframe(frame).SerializeToString())
    return artifact


def _history(seed, price_scale=1.0, rename=False):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = 2000
    categories = rng.choice(["fashion", "food", "travel", "beauty", "gaming"], size=n)
    return pd.DataFrame({
        "star_rating": rng.integers(1, 6, n), "sentiment_rating": rng.random(n),
        "insta_follower": rng.integers(0, 100_000, n), "tiktok": rng.integers(0, 100_000, n), "youtube": rng.integers(0, 100_000, n),
        "price_normalized": np.clip(rng.beta(2, 5, n) * price_scale, 0, 1),
        "categories": [("new-" + c) if rename else c for c in categories],
    })


def _drift(tmp_path, current, baseline):
    from tfx.components.distribution_validator.executor import Executor
    from tfx.types import standard_artifacts, standard_component_specs as specs
    from tfx.utils import json_utils

    from pipeline.pipeline import drift_config

    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "drift")
    Executor().Do(
        {specs.STATISTICS_KEY: [_statistics(tmp_path / "current", current)],
         specs.BASELINE_STATISTICS_KEY: [_statistics(tmp_path / "baseline", baseline)]},
        {specs.ANOMALIES_KEY: [anomalies]},
        {specs.DISTRIBUTION_VALIDATOR_CONFIG_KEY: drift_config(), specs.INCLUDE_SPLIT_PAIRS_KEY: json_utils.dumps([("train", "train")])},
    )
    _write(str(tmp_path / "schema_check"), "train", anomalies_pb2.Anomalies())  # ExampleValidator found nothing
    return lambda: check_anomalies(str(tmp_path / "schema_check"), ["train"], anomalies.uri)


def test_data_like_the_last_blessed_model_s_passes_the_drift_check(tmp_path):
    assert _drift(tmp_path, _history(1), _history(0))() is None  # another sample of one distribution


@pytest.mark.parametrize("change, feature, measure", [
    (dict(price_scale=3.0), "price_normalized", "Jensen-Shannon divergence"),
    (dict(rename=True), "categories", "Linfty distance"),
])
def test_a_shifted_or_renamed_feature_stops_the_run_naming_feature_and_distance(tmp_path, change, feature, measure):
    import re

    with pytest.raises(DataAnomaliesError) as raised:
        _drift(tmp_path, _history(1, **change), _history(0))()
    message = str(raised.value)
    assert "DistributionValidator found the data moved beyond the schema's drift thresholds" in message
    line = next(line for line in message.splitlines() if f"feature {feature}:" in line)
    assert "this run vs the last blessed model's data" in line and measure.lower() in line.lower(), line
    distance = float(re.search(r"is ([0-9.e-]+)", line).group(1))
    assert distance > 0.1 and "0.1" in line, line  # the distance, above the schema's threshold
    others = [l for l in message.splitlines() if "feature " in l and f"feature {feature}:" not in l]
    assert others == [], others  # only what changed is named
