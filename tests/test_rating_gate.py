"""The TFMA gate on the rating head, judged by TFMA's own validator on hand-made metrics (no pipeline run)."""

import json

import tensorflow_model_analysis as tfma
from google.protobuf import json_format
from tensorflow_model_analysis.evaluators import metrics_validator

from models import features
from pipeline.config import PipelineConfig
from pipeline.pipeline import eval_config
from runs.summary import thresholds

RMSE = tfma.metrics.MetricKey(name="root_mean_squared_error", example_weighted=False)
OVERALL = ()
ONE_ROW_SLICE = ((features.OWNER_HISTORY_BUCKET_KEY, "no known hires"),)


def _ok(config: PipelineConfig, slice_key, rmse: float, above_last_blessed: float = 0.0) -> bool:
    metrics = {RMSE: rmse, RMSE.make_diff_key(): above_last_blessed}
    return metrics_validator.validate_metrics((slice_key, metrics), eval_config(config)).validation_ok


def test_the_rmse_bounds_gate_the_overall_slice_only():
    config = PipelineConfig(data_dir="d", output_dir="o", max_rmse=0.3, rmse_tolerance=0.02)
    assert _ok(config, OVERALL, 0.29) and not _ok(config, OVERALL, 0.31)
    assert _ok(config, OVERALL, 0.2, above_last_blessed=0.01) and not _ok(config, OVERALL, 0.2, above_last_blessed=0.03)
    # A slice of one eval row is noise, not a verdict on the model (it refused every Last.fm model).
    assert _ok(config, ONE_ROW_SLICE, 0.9, above_last_blessed=0.5)


def test_the_run_summary_reads_the_recorded_bounds():
    config = PipelineConfig(data_dir="d", output_dir="o", max_rmse=0.25, rmse_tolerance=0.01)
    recorded = json.loads(json_format.MessageToJson(eval_config(config), preserving_proto_field_name=True))
    record = {"settings": {"Evaluator": {"eval_config": recorded}}}
    assert thresholds(record) == {"max_rmse": 0.25, "rmse_tolerance": 0.01}
