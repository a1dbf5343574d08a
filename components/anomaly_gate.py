"""Stops the run when ExampleValidator or DistributionValidator found anomalies, with a readable message.

Both record anomalies but let the pipeline go on; Transform is made to depend
on this gate so bad data never reaches training. ExampleValidator checks each
split against the schema; DistributionValidator checks how far the train split
moved from the data of the last blessed model (the schema's drift_comparator
thresholds), naming the feature and the distance.
"""

import glob
import os
from typing import List, Optional

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

from data.errors import UserError

ANOMALIES_FILE = "SchemaDiff.pb"


class DataAnomaliesError(UserError):
    """The examples do not match the schema."""


def _lines(where: str, anomalies: anomalies_pb2.Anomalies) -> List[str]:
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        if info.description:
            lines.append(f"{where}, feature {feature}: {info.short_description}: {info.description}")
        else:  # DistributionValidator keeps only the comparison's reasons
            lines += [f"{where}, feature {feature}: {r.short_description}: {r.description}" for r in info.reason]
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"{where}, dataset: {info.short_description}: {info.description or '; '.join(r.description for r in info.reason)}")
    return lines


def describe_anomalies(anomalies_uri: str, split_names: List[str]) -> List[str]:
    """One line per anomaly of ExampleValidator's output: split, feature, short and long description."""
    lines = []
    for split in split_names:
        path = os.path.join(anomalies_uri, f"Split-{split}", ANOMALIES_FILE)
        lines += _lines(f"split {split}", anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path)))
    return lines


def describe_drift(anomalies_uri: str) -> List[str]:
    """One line per anomaly of DistributionValidator's output (one folder per compared split pair)."""
    lines = []
    for folder in sorted(glob.glob(os.path.join(anomalies_uri, "SplitPair-*"))):
        pair = os.path.basename(folder)[len("SplitPair-"):]
        lines += _lines(f"split pair {pair} (this run vs the last blessed model's data)",
                        anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(os.path.join(folder, ANOMALIES_FILE))))
    return lines


def check_anomalies(anomalies_uri: str, split_names: List[str], drift_uri: Optional[str] = None) -> None:
    """Raises DataAnomaliesError listing every anomaly; returns on clean data."""
    problems = describe_anomalies(anomalies_uri, split_names)
    drift = describe_drift(drift_uri) if drift_uri else []
    parts = []
    if problems:
        parts.append("ExampleValidator found anomalies against the schema (data/schema.pbtxt):\n  " + "\n  ".join(problems))
    if drift:
        parts.append("DistributionValidator found the data moved beyond the schema's drift thresholds (data/schema.pbtxt, "
                     "drift_comparator) from the data of the last blessed model:\n  " + "\n  ".join(drift))
    if parts:
        raise DataAnomaliesError("\n".join(parts) + "\nThe run stops before Transform.")


@tfx.dsl.components.component
def AnomalyGate(
    anomalies: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies],
    drift: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ExampleAnomalies] = None,
    code_version: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Fails the run (so Transform never starts) when the data has anomalies or drifted (code_version: only for the cache key)."""
    check_anomalies(anomalies.uri, artifact_utils.decode_split_names(anomalies.split_names), drift.uri if drift is not None else None)
