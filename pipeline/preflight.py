"""The input checks a run makes before it writes anything, so a refused run leaves its output folder as it was."""

import os
import tempfile
from typing import Optional

from components.beam_options import check_beam_args, refuse_dask
from data.errors import OutputFolderError
from data.validate import ValidationReport, validate_data
from pipeline.config import PipelineConfig


def check_output_folder(output_dir: str) -> None:
    """The output folder exists as a writable folder, or can be made one; checked without creating anything."""
    if "://" in output_dir:
        return
    path = os.path.abspath(output_dir)
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "is a file" if existing == path else f"lies below the file {existing}"
        raise OutputFolderError(f"--output {output_dir} {what}; expected a folder for the run's artifacts, metadata and models")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" (its nearest existing folder {existing})"
        raise OutputFolderError(f"--output {output_dir}{where} is not writable by this user; give a folder you can write")


def check_input(config: PipelineConfig) -> Optional[ValidationReport]:
    """The run's options, its output folder, then data.validate on the input folder (a UserError for any of them);
    None for a bucket, which ExampleGen checks.

    With drop_invalid the cleaned copies made here are thrown away: ExampleGen
    writes its own under the pipeline root; this only proves enough rows are left.
    """
    check_beam_args(config.beam_pipeline_args)
    refuse_dask(config.beam_pipeline_args)
    check_output_folder(config.output_dir)
    if "://" in config.data_dir:
        return None
    if config.drop_invalid:
        with tempfile.TemporaryDirectory(prefix="influencer_recs_preflight_") as cleaned:
            return validate_data(config.data_dir, drop_invalid=True, cleaned_dir=cleaned)
    return validate_data(config.data_dir)
