"""Pusher that publishes a version atomically.

TFX's Pusher copies straight into `<base>/<version>/`, so a model server
polling the base directory can see a half-copied version. This one publishes
through serving.versions.publish_version (a hidden staging folder, renamed
into place), as `refresh-catalog` does. It publishes
the Trainer's Format-Pushed export (owner tables from every row) when there
is one; the evaluators measured Format-Serving (train-only tables).
"""

import os
import time
from typing import Any, Dict, List

from tfx import types
from tfx.components.pusher import component as pusher_component
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from models import progress
from models.trainer import pushed_model_dir
from serving import versions


class Executor(pusher_executor.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        pushed = pushed_model_dir(model_path)
        if fileio.exists(os.path.join(pushed, "saved_model.pb")):
            model_path = pushed
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        version = versions.publish_version(base, lambda staging: io_utils.copy_dir(model_path, staging), clock=lambda: time.time()).name
        progress.report("Pusher: version %s pushed to %s", version, base)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=os.path.join(base, version), pushed_version=version)


class Pusher(pusher_component.Pusher):
    """`tfx.components.Pusher` (filesystem destinations) with atomic versions."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
