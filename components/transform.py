"""TFX's Transform executor, minus tf.Transform's deep-copy optimization.

tensorflow-transform 1.16's `deep_copy` builds `AppliedPTransform` with the
constructor of older Beam releases; under the pinned Beam 2.74 it raises
TypeError as soon as a preprocessing_fn has more than one analysis phase (ours
does: owner profiles are computed from scaled, vocabulary-encoded features).
The optimization only saves re-reading the input per phase, so it is switched
off for the duration of the run; results are identical.
"""

import contextlib
from typing import Any, Dict, Iterator, List

from tensorflow_transform.beam.context import Context
from tfx import types
from tfx.components.transform import component as transform_component
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec


@contextlib.contextmanager
def _deep_copy_disabled() -> Iterator[None]:
    original = Context.__dict__["get_use_deep_copy_optimization"]
    Context.get_use_deep_copy_optimization = classmethod(lambda cls: False)
    try:
        yield
    finally:
        Context.get_use_deep_copy_optimization = original


class Executor(transform_executor.Executor):
    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]], exec_properties: Dict[str, Any]) -> None:
        with _deep_copy_disabled():
            return super().Do(input_dict, output_dict, exec_properties)


class Transform(transform_component.Transform):
    """`tfx.components.Transform` running the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
