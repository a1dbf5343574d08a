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
