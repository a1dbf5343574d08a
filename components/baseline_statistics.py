"""The statistics of the data the last blessed model was trained on: the baseline the next export is compared with.

A Resolver strategy (TFX's LatestBlessedModelStrategy finds the model; ML Metadata's
lineage finds its data): blessed model <- Trainer <- Examples -> StatisticsGen ->
ExampleStatistics. A run whose data drifted too far from it stops before Transform
(DistributionValidator, then the AnomalyGate). Before any model was blessed there is
no baseline and nothing is compared.
"""

from typing import Dict, List, Optional, Set

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx import v1 as tfx
from tfx.types import standard_artifacts

MODEL, BLESSING, STATISTICS = "model", "model_blessing", "statistics"
_INPUT, _OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT


def _neighbours(store: mlmd.MetadataStore, artifact_ids: List[int], event_type: int) -> Set[int]:
    """Ids of the executions that had these artifacts as inputs or outputs (`event_type`)."""
    return {e.execution_id for e in store.get_events_by_artifact_ids(artifact_ids) if e.type == event_type}


def _inputs_of(store: mlmd.MetadataStore, execution_ids: Set[int]) -> Set[int]:
    return {e.artifact_id for e in store.get_events_by_execution_ids(list(execution_ids)) if e.type == _INPUT}


def statistics_of_model(store: mlmd.MetadataStore, model: types.Artifact, statistics: List[types.Artifact]) -> Optional[types.Artifact]:
    """Of `statistics`, the newest one computed on the examples the Trainer of `model` read; None if there is none."""
    trained_on = _inputs_of(store, _neighbours(store, [model.id], _OUTPUT))
    for candidate in sorted(statistics, key=lambda a: a.id, reverse=True):
        if _inputs_of(store, _neighbours(store, [candidate.id], _OUTPUT)) & trained_on:
            return candidate
    return None


class BlessedModelStatisticsStrategy(tfx.dsl.experimental.ResolverStrategy):
    """Resolves `statistics` to the ExampleStatistics of the latest blessed model's training data (or nothing).

    Inputs: MODEL (Model), BLESSING (ModelBlessing, with `blessed` and `current_model_id` as the
    RetrievalEvaluator writes them) and STATISTICS (StatisticsGen's ExampleStatistics).
    """

    def resolve_artifacts(self, store: mlmd.MetadataStore, input_dict: Dict[str, List[types.Artifact]]) -> Optional[Dict[str, List[types.Artifact]]]:
        blessed = {b.get_int_custom_property("current_model_id") for b in input_dict.get(BLESSING, []) if b.get_int_custom_property("blessed") == 1}
        models = sorted((m for m in input_dict.get(MODEL, []) if m.id in blessed), key=lambda m: m.id, reverse=True)
        found = statistics_of_model(store, models[0], input_dict.get(STATISTICS, [])) if models else None
        return {MODEL: models[:1] if found else [], BLESSING: [], STATISTICS: [found] if found else []}


def baseline_statistics_resolver() -> tfx.dsl.Resolver:
    return tfx.dsl.Resolver(
        strategy_class=BlessedModelStatisticsStrategy,
        **{
            MODEL: tfx.dsl.Channel(type=standard_artifacts.Model),
            BLESSING: tfx.dsl.Channel(type=standard_artifacts.ModelBlessing, producer_component_id="RetrievalEvaluator", output_key="blessing"),
            STATISTICS: tfx.dsl.Channel(type=standard_artifacts.ExampleStatistics, producer_component_id="StatisticsGen", output_key="statistics"),
        },
    ).with_id("blessed_model_statistics_resolver")
