"""What a run recorded in ML Metadata: its components' output artifacts and wall times.

Artifacts are found by asking the store (node context -> its newest
execution -> that execution's output events), never by globbing the pipeline
root, so a cached execution points at the artifact it reused.
"""

import contextlib
import dataclasses
import os
from typing import Any, Dict, Iterator, List

import numpy as np
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from data.errors import UserError
from pipeline.config import PipelineConfig

_DONE = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


class ArtifactNotFoundError(FileNotFoundError):
    """The store has no finished execution of that component with that output."""


# A local run's layout (pipeline/config.py): artifacts at <output>/tfx/<component>/<key>/<execution id>,
# pushed versions at <output>/serving/<model>/<version>; the store is <output>/metadata.sqlite.
_LAYOUT_ROOTS = {"tfx": 3, "serving": 2}


def resolve_uri(uri: str, metadata_path: str) -> str:
    """A recorded path as an absolute one: runs recorded before paths were made absolute hold paths
    relative to the folder they started in, which are resolved against the store's output folder."""
    if not uri or "://" in uri or os.path.isabs(uri):
        return uri
    parts = os.path.normpath(uri).split(os.sep)
    output_dir = os.path.dirname(os.path.abspath(metadata_path))
    for root, depth in _LAYOUT_ROOTS.items():
        if len(parts) > depth and parts[-depth - 1] == root:
            return os.path.join(output_dir, root, *parts[-depth:])
    return os.path.join(output_dir, uri)


class StoreNotFoundError(UserError):
    """No ML Metadata store where the output folder should have one."""


@contextlib.contextmanager
def open_store(metadata_path: str) -> Iterator[metadata_store.MetadataStore]:
    if "://" not in metadata_path and not os.path.isfile(metadata_path):
        raise StoreNotFoundError(
            f"no metadata store {metadata_path}: --output {os.path.dirname(metadata_path) or '.'} holds no runs (give the --output a run used)"
        )
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    yield metadata_store.MetadataStore(connection)


def artifact_uris(store: metadata_store.MetadataStore, pipeline_name: str, component_id: str, output_key: str) -> List[str]:
    """URIs of `component_id`'s `output_key` artifacts, one per finished execution, oldest first."""
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{component_id}")
    if context is None:
        return []
    executions = sorted(
        (e for e in store.get_executions_by_context(context.id) if e.last_known_state in _DONE), key=lambda e: (e.create_time_since_epoch, e.id)
    )
    if not executions:
        return []
    order = {e.id: n for n, e in enumerate(executions)}
    found = []
    for event in store.get_events_by_execution_ids(list(order)):
        if event.type == metadata_store_pb2.Event.OUTPUT and event.path.steps and event.path.steps[0].key == output_key:
            found.append((order[event.execution_id], event.artifact_id))
    found.sort()
    by_id = {a.id: a.uri for a in store.get_artifacts_by_id([artifact_id for _, artifact_id in found])}
    return [by_id[artifact_id] for _, artifact_id in found]


def latest_artifact_uri(config: PipelineConfig, component_id: str, output_key: str) -> str:
    """The newest `output_key` artifact of `component_id` in this output folder's metadata store."""
    with open_store(config.metadata_path) as store:
        uris = artifact_uris(store, config.pipeline_name, component_id, output_key)
    if not uris:
        raise ArtifactNotFoundError(f"{config.metadata_path}: no finished {component_id} run with output {output_key!r} (run the pipeline first)")
    return resolve_uri(uris[-1], config.metadata_path)


def stage_timings(metadata_path: str) -> Dict[str, float]:
    """Mean seconds of each component's executions, from the ML Metadata store (cached ones left out)."""
    with open_store(metadata_path) as store:
        types = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
        runs: Dict[str, List[float]] = {}
        for execution in store.get_executions():
            if execution.last_known_state == metadata_store_pb2.Execution.CACHED:
                continue
            seconds = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0
            runs.setdefault(types[execution.type_id], []).append(seconds)
    return {name: float(np.mean(values)) for name, values in runs.items()}


@dataclasses.dataclass
class NodeRun:
    """One component's execution in one pipeline run."""

    node_id: str
    state: str  # "complete", "cached", "failed", "running", ...
    started: float  # seconds since the epoch
    seconds: float
    properties: Dict[str, Any]
    outputs: Dict[str, List[metadata_store_pb2.Artifact]]


def _value(value: metadata_store_pb2.Value) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def pipeline_runs(store: metadata_store.MetadataStore, pipeline_name: str) -> List[metadata_store_pb2.Context]:
    """The pipeline's runs (the contexts LocalDagRunner and Kubeflow record), oldest first."""
    runs = [c for c in store.get_contexts_by_type("pipeline_run") if _belongs(store, c, pipeline_name)]
    return sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))


def _belongs(store: metadata_store.MetadataStore, run: metadata_store_pb2.Context, pipeline_name: str) -> bool:
    parents = store.get_parent_contexts_by_context(run.id)
    return not parents or any(p.name == pipeline_name for p in parents)


def run_nodes(store: metadata_store.MetadataStore, run: metadata_store_pb2.Context) -> Dict[str, NodeRun]:
    """Every component execution of one run, in execution order, with its outputs."""
    node_type = store.get_context_type("node").id
    states = {v: k.lower() for k, v in metadata_store_pb2.Execution.State.items()}
    nodes: Dict[str, NodeRun] = {}
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: (e.create_time_since_epoch, e.id))
    events = store.get_events_by_execution_ids([e.id for e in executions]) if executions else []
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list({e.artifact_id for e in events}))} if events else {}
    for execution in executions:
        node = next((c.name for c in store.get_contexts_by_execution(execution.id) if c.type_id == node_type), str(execution.id))
        outputs: Dict[str, List[metadata_store_pb2.Artifact]] = {}
        for event in events:
            if event.execution_id == execution.id and event.type == metadata_store_pb2.Event.OUTPUT and event.path.steps:
                outputs.setdefault(event.path.steps[0].key, []).append(artifacts[event.artifact_id])
        nodes[node.split(".", 1)[-1]] = NodeRun(
            node_id=node.split(".", 1)[-1],
            state=states.get(execution.last_known_state, "unknown"),
            started=execution.create_time_since_epoch / 1000.0,
            seconds=(execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0,
            properties={k: _value(v) for k, v in execution.custom_properties.items()},
            outputs=outputs,
        )
    return nodes


def artifact_property(artifact: metadata_store_pb2.Artifact, name: str) -> Any:
    return _value(artifact.custom_properties[name]) if name in artifact.custom_properties else None
