"""Runs the pipeline on this machine: LocalDagRunner, SQLite metadata, DirectRunner."""

from absl import logging
from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline
from pipeline.run_lock import output_lock


def run(config: PipelineConfig) -> None:
    """Builds and runs the pipeline, holding the output folder's run lock; TFX logs each component as it runs
    (pipeline/console.py makes that quiet)."""
    logging.set_verbosity(logging.INFO)
    with output_lock(config.output_dir):
        metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
        tfx.orchestration.LocalDagRunner().run(create_pipeline(config, metadata_connection_config=metadata))
