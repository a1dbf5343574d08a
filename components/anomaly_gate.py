"""Stops the run when ExampleValidator found anomalies, with a readable message.

ExampleValidator records anomalies but lets the pipeline go on; Transform is
made to depend on this gate so bad data never reaches training.
"""

import os
from typing import List

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from data.errors import UserError

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(UserError):
    """The examples do not match the schema."""


def describe_anomalies(anomalies_uri: str, split_names: List[str]) -> List[str]:
    """One line per anomaly: split, feature, short and long description."""
    lines = []
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
        anomalies = anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
        for feature, info in sorted(anomalies.anomaly_info.items()):
            lines.append(f"split {split}, feature {feature}: {info.short_description}: {info.description}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            lines.append(f"split {split}, dataset: {info.short_description}: {info.description}")
    return lines


def check_anomalies(anomalies_uri: str, split_names: List[str]) -> None:
    """Raises DataAnomaliesError listing every anomaly; returns on clean data."""
    problems = describe_anomalies(anomalies_uri, split_names)
    if problems:
        raise DataAnomaliesError(
            "ExampleValidator found anomalies against the schema (data/schema.pbtxt); "
            "the run stops before Transform:\n  " + "\n  ".join(problems)
        )


@tfx.dsl.components.component
def AnomalyGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    code_version: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Fails the run (so Transform never starts) when the data has anomalies (code_version: only for the cache key)."""
    check_anomalies(anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names))
