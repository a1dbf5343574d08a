"""TFX's Transform executor, with tf.Transform's deep copy mended for the pinned Beam.

tf.Transform reads its input once per analysis phase ("deep copy") where the
source may be read again; without it the input of the second phase is
materialized, and on the DirectRunner every train row then sits in memory
(ours has two phases: owner profiles are computed from scaled,
vocabulary-encoded features; at 10M rows that was 2 x 0.65 GB of rows in the
workers' output buffers and again in the runner). tensorflow-transform 1.16's
`deep_copy` builds `AppliedPTransform` with the four arguments of older Beam
releases, which Beam 2.74 refuses (TypeError); meanwhile the two it added
default to what Beam's own transform replacement passes (no environment; the
node then takes the transform's own annotations).
"""

import contextlib
from typing import Any, Dict, Iterator, List

from apache_beam import pipeline as beam_pipeline
from tfx import types as tfx_types
from tfx.components.transform import component as transform_component
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec


@contextlib.contextmanager
def deep_copy_on_this_beam() -> Iterator[None]:
    """tf.Transform's deep copy on Beam 2.74: `AppliedPTransform`'s two new arguments default to None meanwhile.

    Set on the constructor itself, not on a subclass: deep_copy also asks `isinstance(node, AppliedPTransform)`.
    """
    init = beam_pipeline.AppliedPTransform.__init__
    saved = init.__defaults__
    init.__defaults__ = (None, None)  # environment_id, annotations
    try:
        yield
    finally:
        init.__defaults__ = saved


class Executor(transform_executor.Executor):
    def Do(self, input_dict: Dict[str, List[tfx_types.Artifact]], output_dict: Dict[str, List[tfx_types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        with deep_copy_on_this_beam():
            return super().Do(input_dict, output_dict, exec_properties)


class Transform(transform_component.Transform):
    """`tfx.components.Transform` running the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
