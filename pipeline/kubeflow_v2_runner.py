"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines.

The same `create_pipeline` as the local run, compiled by TFX's
KubeflowV2DagRunner into a PipelineJob JSON: nothing runs and no cluster is
needed. Every step runs in one image (deploy/Dockerfile), so what the steps
read must exist there: data, artifacts and served models live in a bucket
(gs://...), the schema file is the copy baked into the image, and the metadata
store is the cluster's own (no SQLite).
"""

import dataclasses
import os
from typing import List, Optional

from tfx import v1 as tfx

from components.beam_options import default_beam_args
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline

# Where deploy/Dockerfile copies the project; the schema is read from there.
CONTAINER_SOURCE_DIR = "/pipeline"
CONTAINER_SCHEMA_FILE = f"{CONTAINER_SOURCE_DIR}/data/schema.pbtxt"
# DirectRunner inside each step's container on all of *its* cores (0 = all);
# the compiling machine's core count means nothing there.
CONTAINER_BEAM_ARGS = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]


def _check_location(name: str, path: str) -> None:
    """A relative path would resolve inside the container's working directory, i.e. nowhere useful."""
    if "://" not in path and not path.startswith("/"):
        raise ValueError(
            f"{name} must be a bucket path (gs://BUCKET/...) or an absolute path inside the container, "
            f"got {path!r}: the steps run in containers, not on this machine"
        )


def container_beam_args(config: PipelineConfig) -> List[str]:
    """The user's Beam args verbatim; the local default becomes the container default."""
    if config.beam_pipeline_args == default_beam_args():
        return list(CONTAINER_BEAM_ARGS)
    return list(config.beam_pipeline_args)


def compile_pipeline(
    config: PipelineConfig,
    image: str,
    output_file: str,
    schema_file: str = CONTAINER_SCHEMA_FILE,
    display_name: Optional[str] = None,
) -> str:
    """Writes the Kubeflow v2 / Vertex pipeline to `output_file` and returns its path.

    `*.json`: the PipelineJob Vertex submits; `*.yaml`: the bare PipelineSpec
    that a Kubeflow Pipelines 2.x backend uploads.

    `config.data_dir` and `config.output_dir` are where the steps read the CSVs
    and write artifacts (`<output>/tfx`) and pushed models
    (`<output>/serving/<model_name>`): bucket paths for Vertex. `image` runs
    every step. `output_file` may be local or gs://.
    """
    if not image:
        raise ValueError("image must name the container image built from deploy/Dockerfile, e.g. REGISTRY/influencer-recs:TAG")
    _check_location("data dir", config.data_dir)
    _check_location("output dir", config.output_dir)
    _check_location("schema file", schema_file)
    # Pipeline() hands its Beam args to the Beam-based components as it is built.
    config = dataclasses.replace(config, beam_pipeline_args=container_beam_args(config))
    # The drift check's Resolver strategy is custom; the V2 compiler takes only TFX's two built-in ones.
    pipeline = create_pipeline(config, metadata_connection_config=None, schema_file=schema_file, drift_check=False)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, display_name=display_name or config.pipeline_name
        ),
        output_dir=os.path.dirname(output_file) or ".",
        output_filename=os.path.basename(output_file),
    )
    runner.run(pipeline, write_out=True)
    return output_file
