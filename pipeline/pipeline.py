"""Builds the TFX pipeline from one PipelineConfig."""

import os

from tfx import v1 as tfx

from components.anomaly_gate import AnomalyGate
from components.transform import Transform
from components.interaction_example_gen import InteractionExampleGen
from models import features
from pipeline.config import PipelineConfig

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "schema.pbtxt")
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    """ExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator -> gate -> Transform."""
    example_gen = InteractionExampleGen(
        data_dir=config.data_dir, eval_ratio=config.eval_ratio, drop_invalid=config.drop_invalid
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=SCHEMA_FILE)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        # The catalog split has no owner/rating features; data.validate checks it.
        exclude_splits=[features.CATALOG_SPLIT],
    )
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"])
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        # Analyze train only, so eval rows never leak into scaling or owner profiles.
        splits_config=tfx.proto.SplitsConfig(
            analyze=[features.TRAIN_SPLIT], transform=[features.TRAIN_SPLIT, features.EVAL_SPLIT]
        ),
        custom_config=config.transform_config(),
        # StatisticsGen already profiles the raw data; skipping Transform's own
        # pre/post statistics halves its wall time.
        disable_statistics=True,
    )
    transform.add_upstream_node(anomaly_gate)

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, example_validator, anomaly_gate, transform],
        enable_cache=config.enable_cache,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path),
        beam_pipeline_args=config.beam_pipeline_args,
    )
