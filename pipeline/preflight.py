"""The input checks a run makes before it writes anything, so a refused run leaves its output folder as it was."""

import tempfile
from typing import Optional

from data.validate import ValidationReport, validate_data
from pipeline.config import PipelineConfig


def check_input(config: PipelineConfig) -> Optional[ValidationReport]:
    """data.validate on the input folder (DataValidationError on bad input); None for a bucket, which ExampleGen checks.

    With drop_invalid the cleaned copies made here are thrown away: ExampleGen
    writes its own under the pipeline root; this only proves enough rows are left.
    """
    if "://" in config.data_dir:
        return None
    if config.drop_invalid:
        with tempfile.TemporaryDirectory(prefix="influencer_recs_preflight_") as cleaned:
            return validate_data(config.data_dir, drop_invalid=True, cleaned_dir=cleaned)
    return validate_data(config.data_dir)
