"""One pipeline run as plain data, read from ML Metadata and the artifacts it points at.

The run summary, the report and `runs compare` all start from `run_record`,
so they can never disagree about what a run did.
"""

import json
import os
from typing import Any, Dict, List, Optional

from data.errors import UserError
from runs import metadata
from runs.compare import resolve_run

# Component ids of pipeline/pipeline.py whose outputs the record reads.
EXAMPLE_GEN, STATISTICS, ANOMALIES, TRAINER = "InteractionExampleGen", "StatisticsGen", "ExampleValidator", "Trainer"
SCHEMA_GEN = "ImportSchemaGen"
EVALUATOR, RETRIEVAL_EVALUATOR, PUSHER, BATCH_SCORER = "Evaluator", "RetrievalEvaluator", "Pusher", "BatchScorer"
# Execution properties that are settings (what `runs compare` diffs); the rest are paths and bookkeeping.
# ExampleGen's input_base, input_fingerprint and output_config say which data was read and how it was split.
_SETTING_KEYS = ("custom_config", "min_recall_at_10", "min_lift_over_popular", "max_recall_drop", "max_eval_owners", "eval_config", "code_version",
                 "input_base", "input_fingerprint", "output_config")


class RunNotFoundError(UserError, LookupError):
    """No such run in the metadata store."""


def list_runs(metadata_path: str, pipeline_name: str) -> List[str]:
    """Run ids, oldest first."""
    with metadata.open_store(metadata_path) as store:
        return [run.name for run in metadata.pipeline_runs(store, pipeline_name)]


def run_record(metadata_path: str, pipeline_name: str, run_id: Optional[str] = None, brief: bool = False) -> Dict[str, Any]:
    """What one run (default: the newest) did: components, settings, metrics, gate verdict and push.

    `brief`: without TFMA's metrics and the training and index reports (what `runs list` shows needs none).
    """
    from models.layout import INDEX_REPORT, MEASURED_FORMAT, PUSHED_FORMAT, RETRIEVAL_METRICS_FILE as METRICS_FILE, TRAINING_REPORT
    from models.layout import VALIDATION_REPORT_FILE as VALIDATION_REPORT

    with metadata.open_store(metadata_path) as store:
        runs = metadata.pipeline_runs(store, pipeline_name)
        if not runs:
            raise RunNotFoundError(f"{metadata_path}: no runs of pipeline {pipeline_name!r}")
        try:
            name = runs[-1].name if run_id is None else resolve_run([r.name for r in runs], run_id)
        except LookupError as error:
            raise RunNotFoundError(f"{metadata_path}: {error}") from None
        chosen = next(r for r in runs if r.name == name)
        nodes = metadata.run_nodes(store, chosen)
    for node in nodes.values():
        for found in node.outputs.values():
            for artifact in found:
                artifact.uri = metadata.resolve_uri(artifact.uri, metadata_path)
    uri = lambda node, key: nodes[node].outputs[key][0].uri if node in nodes and nodes[node].outputs.get(key) else None
    record: Dict[str, Any] = {
        "run_id": chosen.name,
        "components": [{"node": n.node_id, "state": n.state, "seconds": round(n.seconds, 1)} for n in nodes.values()],
        "settings": {n.node_id: {k: _setting(v) for k, v in n.properties.items() if k in _SETTING_KEYS} for n in nodes.values()},
        "artifacts": {n.node_id: {key: [a.uri for a in found] for key, found in n.outputs.items()} for n in nodes.values()},
        "finished": all(n.state in ("complete", "cached") for n in nodes.values()) and PUSHER in nodes,
    }
    record["settings"] = {node: values for node, values in record["settings"].items() if values}
    record["retrieval"] = _json(uri(RETRIEVAL_EVALUATOR, "evaluation"), METRICS_FILE)
    record["data"] = _json(uri(EXAMPLE_GEN, "examples"), VALIDATION_REPORT)
    record["started"] = min((n.started for n in nodes.values()), default=None)
    record["seconds"] = (max(n.started + n.seconds for n in nodes.values()) - record["started"]) if nodes else 0.0
    if not brief:
        record["rating"] = _rating(uri(EVALUATOR, "evaluation"))
        model = uri(TRAINER, "model")
        record["training"] = _json(model and os.path.join(model, MEASURED_FORMAT, "assets.extra"), TRAINING_REPORT)
        record["index"] = _json(model and os.path.join(model, PUSHED_FORMAT, "assets.extra"), INDEX_REPORT)
    pushed = nodes[PUSHER].outputs.get("pushed_model", [None])[0] if PUSHER in nodes else None
    record["pushed"] = {
        "pushed": bool(pushed is not None and metadata.artifact_property(pushed, "pushed") == 1),
        "destination": pushed is not None and metadata.resolve_uri(metadata.artifact_property(pushed, "pushed_destination"), metadata_path) or None,
    }
    return record


def _setting(value: Any) -> Any:
    """Execution properties hold JSON strings for structured settings; decode those."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _json(directory: Optional[str], name: str) -> Dict[str, Any]:
    path = directory and os.path.join(directory, name)
    if not path:
        return {}
    if "://" not in path:  # local: no TensorFlow to load (runs list stays fast)
        if not os.path.exists(path):
            return {}
        with open(path) as handle:
            return json.load(handle)
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def _rating(evaluation_uri: Optional[str]) -> Dict[str, Any]:
    """TFMA's overall metrics of the rating head, whether its thresholds passed, and under "slices" each slicing's buckets."""
    if not evaluation_uri:
        return {}
    import tensorflow_model_analysis as tfma

    values: Dict[str, Any] = {}
    slices: Dict[str, Dict[str, Dict[str, float]]] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        keys = slice_metrics.slice_key.single_slice_keys
        metrics = {entry.key.name: entry.value.double_value.value for entry in slice_metrics.metric_keys_and_values
                   if not entry.key.is_diff and entry.value.HasField("double_value")}
        if not keys:
            values.update(metrics)  # the overall slice
        elif len(keys) == 1:
            value = keys[0].bytes_value.decode() if keys[0].HasField("bytes_value") else str(keys[0].int64_value or keys[0].float_value)
            slices.setdefault(keys[0].column, {})[value] = metrics
    if slices:
        values["slices"] = slices
    try:
        values["validation_ok"] = bool(tfma.load_validation_result(evaluation_uri).validation_ok)
    except Exception:  # no validation file: no threshold was configured
        pass
    return values
