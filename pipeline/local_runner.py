"""Runs the pipeline on this machine: LocalDagRunner, SQLite metadata, DirectRunner."""

import os

from absl import logging
from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline


def run(config: PipelineConfig) -> None:
    """Builds and runs the pipeline; TFX logs each component as it runs (pipeline/console.py makes that quiet)."""
    logging.set_verbosity(logging.INFO)
    os.makedirs(config.output_dir, exist_ok=True)
    metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
    tfx.orchestration.LocalDagRunner().run(create_pipeline(config, metadata_connection_config=metadata))
