"""Builds the TFX pipeline from one PipelineConfig."""

import json
import os
from typing import Optional

import tensorflow_model_analysis as tfma
from google.protobuf import text_format
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import v1 as tfx
from tfx.components.distribution_validator.component import DistributionValidator  # not exported in tfx.v1 (1.16)

from components.anomaly_gate import AnomalyGate
from components.baseline_statistics import STATISTICS as BASELINE_STATISTICS, baseline_statistics_resolver
from components.batch_scorer.component import BatchScorer
from components.catalog_refresher import CatalogRefresher
from components.interaction_example_gen import InteractionExampleGen
from components.pusher import Pusher
from components.retrieval_evaluator import RetrievalEvaluator
from components.transform import Transform
from data import schema
from models import features, rating_metrics
from models.config import CODE_VERSION_KEY
from pipeline.code_version import code_version
from pipeline.config import PipelineConfig, absolute_path
from serving import versions

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "schema.pbtxt")
PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.trainer.run_fn"


def drift_config(schema_file: str = SCHEMA_FILE) -> tfx.proto.DistributionValidatorConfig:
    """DistributionValidator's comparators: the drift_comparator of every schema feature that has one."""
    schema = schema_pb2.Schema()
    with open(schema_file) as handle:
        text_format.Parse(handle.read(), schema)
    config = tfx.proto.DistributionValidatorConfig()
    for feature in schema.feature:
        if feature.HasField("drift_comparator"):
            compared = config.default_slice_config.feature.add()
            compared.path.step.append(feature.name)
            compared.distribution_comparator.CopyFrom(feature.drift_comparator)
    return config


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """TFMA on the rating head: RMSE (gated on the overall slice), MAE and example count, also by the two slices."""
    rmse_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(upper_bound={"value": config.max_rmse}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.LOWER_IS_BETTER, absolute={"value": config.rmse_tolerance}
        ),
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_default",
                label_key=features.LABEL_KEY,
                preprocessing_function_names=["transform_features"],
            )
        ],
        # Overall (the gate's), then by owner history size and influencer popularity (the served model's transform_features adds both keys).
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[features.OWNER_HISTORY_BUCKET_KEY]),
                       tfma.SlicingSpec(feature_keys=[features.INFLUENCER_POPULARITY_BUCKET_KEY])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    # RMSE, MAE and the example count in one combiner (TFMA's three took 40% of the Evaluator on anime).
                    # Gated on the overall slice only: a bare `threshold` applies to every slice, and a slice of one
                    # eval row (an owner with no known hires) then refused models whose overall RMSE met the bound.
                    tfma.MetricConfig(
                        class_name=rating_metrics.RatingErrors.__name__,
                        module=rating_metrics.__name__,
                        per_slice_thresholds=[tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=rmse_threshold)],
                    ),
                ]
            )
        ],
    )


def create_pipeline(
    config: PipelineConfig,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    schema_file: str = SCHEMA_FILE,
    drift_check: bool = True,
) -> tfx.dsl.Pipeline:
    """ExampleGen -> statistics/schema/validation -> Transform -> Trainer -> Evaluators -> Pusher.

    The metadata store is the runner's business (local: SQLite; Kubeflow/Vertex:
    the cluster's own), so it is passed in, not derived from the config.
    `schema_file` must be readable where ImportSchemaGen runs (a container
    path or gs:// when compiled for Kubeflow). `drift_check`: compare the train
    split with the last blessed model's (a custom Resolver strategy, which the
    Kubeflow V2 compiler does not take).
    """
    version = code_version()
    example_gen = InteractionExampleGen(
        data_dir=absolute_path(config.data_dir), eval_ratio=config.eval_ratio, validation_ratio=config.validation_ratio, drop_invalid=config.drop_invalid,
        code_version=version,
    )
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    # With the schema, ids (is_categorical) are profiled as unique counts and top values, not as numbers.
    # rating_eval copies eval rows: profiled with eval already.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
                                                  exclude_splits=[features.RATING_EVAL_SPLIT])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        # The catalog split has no owner/rating features; data.validate checks it.
        exclude_splits=[features.CATALOG_SPLIT, features.RATING_EVAL_SPLIT],
    )
    drift_nodes = []
    if drift_check:
        # The train split against the train split the last blessed model learned from, by the schema's drift thresholds.
        baseline_statistics = baseline_statistics_resolver()
        distribution_validator = DistributionValidator(
            statistics=statistics_gen.outputs["statistics"],
            baseline_statistics=baseline_statistics.outputs[BASELINE_STATISTICS],
            config=drift_config(),
            include_split_pairs=[(features.TRAIN_SPLIT, features.TRAIN_SPLIT)],
        )
        drift_nodes = [baseline_statistics, distribution_validator]
    anomaly_gate = AnomalyGate(anomalies=example_validator.outputs["anomalies"], code_version=version,
                               **({"drift": drift_nodes[1].outputs["anomalies"]} if drift_nodes else {}))
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        # Analyze train only, so validation and eval rows never leak into scaling or owner profiles.
        # Nothing reads transformed rows (the Trainer, Evaluator and serving apply the graph to raw
        # examples), so none are written: half of Transform's time on anime (60 -> 30 s).
        splits_config=tfx.proto.SplitsConfig(analyze=[features.TRAIN_SPLIT], transform=[]),
        materialize=False,
        custom_config={**config.transform_config(), CODE_VERSION_KEY: version},
        # StatisticsGen already profiles the raw data; skipping Transform's own
        # pre/post statistics halves its wall time.
        disable_statistics=True,
    )
    transform.add_upstream_node(anomaly_gate)

    # The Trainer reads raw examples (it needs the catalog split too) and
    # applies the transform graph in its input pipeline.
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=[features.TRAIN_SPLIT]),
        eval_args=tfx.proto.EvalArgs(splits=[features.EVAL_SPLIT]),
        custom_config={**config.trainer_config(), CODE_VERSION_KEY: version},
    )
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.ModelBlessing, producer_component_id="RetrievalEvaluator", output_key="blessing"
        ),
    ).with_id("latest_blessed_model_resolver")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(config),
        example_splits=[features.RATING_EVAL_SPLIT],
    )
    retrieval_evaluator = RetrievalEvaluator(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        rating_blessing=evaluator.outputs["blessing"],
        baseline_model=baseline.outputs["model"],
        min_recall_at_10=config.min_recall_at_10,
        max_recall_drop=config.max_recall_drop,
        min_lift_over_popular=config.min_lift_over_popular,
        max_eval_owners=config.max_eval_owners,
        code_version=version,
    )
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=retrieval_evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.model_serving_dir)
        ),
        custom_config={CODE_VERSION_KEY: version},
    )

    components = [
        example_gen, statistics_gen, schema_gen, example_validator, *drift_nodes, anomaly_gate, transform,
        trainer, baseline, evaluator, retrieval_evaluator, pusher,
    ]
    if config.batch_score:
        components.append(batch_scorer(config, pusher, version))
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=config.beam_pipeline_args,
    )


def batch_scorer(config: PipelineConfig, pusher: Pusher, version: str):
    """Scores every owner of the input history with the model the Pusher pushed (only if it pushed)."""
    return BatchScorer(
        pushed_model=pusher.outputs["pushed_model"],
        owners=os.path.join(absolute_path(config.data_dir), schema.HISTORY_FILE),
        k=config.batch_score_k,
        beam_args=json.dumps(config.beam_pipeline_args),
        code_version=version,
    )


def create_refresh_pipeline(
    config: PipelineConfig,
    influencers: str,
    allow_shrink: bool = False,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
) -> tfx.dsl.Pipeline:
    """The version served now (the newest under the model base) -> CatalogRefresher over a new influencer file.

    Its own pipeline name (config.refresh_pipeline_name) in the same root and metadata store, so the training
    pipeline's runs stay the training pipeline's. Never cached: the same file path may hold a new catalog.
    """
    served = tfx.dsl.Importer(
        source_uri=versions.resolve_version_dir(config.model_serving_dir),
        artifact_type=tfx.types.standard_artifacts.PushedModel,
    ).with_id("served_model_importer")
    refresher = CatalogRefresher(served_model=served.outputs["result"], influencers=absolute_path(influencers), allow_shrink=int(allow_shrink))
    return tfx.dsl.Pipeline(
        pipeline_name=config.refresh_pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[served, refresher],
        enable_cache=False,
        metadata_connection_config=metadata_connection_config,
    )
