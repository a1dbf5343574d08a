"""Runs the pipeline on this machine: LocalDagRunner, SQLite metadata, DirectRunner."""

from absl import logging
from tfx import v1 as tfx

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline, create_refresh_pipeline
from pipeline.run_lock import output_lock


def run(config: PipelineConfig) -> None:
    """Builds and runs the pipeline, holding the output folder's run lock; TFX logs each component as it runs
    (pipeline/console.py makes that quiet)."""
    _run_locked(config, lambda metadata: create_pipeline(config, metadata_connection_config=metadata))


def run_refresh(config: PipelineConfig, influencers: str, allow_shrink: bool = False) -> None:
    """The catalog-refresh pipeline (the served version over a new influencer file) on the run's output folder."""
    _run_locked(config, lambda metadata: create_refresh_pipeline(config, influencers, allow_shrink, metadata_connection_config=metadata))


def _run_locked(config: PipelineConfig, build) -> None:
    logging.set_verbosity(logging.INFO)
    with output_lock(config.output_dir):  # built inside: the version a refresh imports is the one served under the lock
        metadata = tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)
        tfx.orchestration.LocalDagRunner().run(build(metadata))
