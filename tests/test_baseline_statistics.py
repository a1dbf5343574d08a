"""The drift baseline: the statistics of the data the latest blessed model was trained on, found by ML Metadata lineage."""

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
from tfx.types import standard_artifacts

from components.baseline_statistics import BLESSING, MODEL, STATISTICS, BlessedModelStatisticsStrategy


class _Store:
    """A real in-memory ML Metadata store with artifacts and the executions that link them."""

    def __init__(self):
        config = metadata_store_pb2.ConnectionConfig()
        config.fake_database.SetInParent()
        self.store = mlmd.MetadataStore(config)
        self._types = {}
        self.execution_type = self.store.put_execution_type(metadata_store_pb2.ExecutionType(name="Step"))

    def artifact(self, cls, **custom):
        artifact = cls()
        if cls.TYPE_NAME not in self._types:
            self._types[cls.TYPE_NAME] = self.store.put_artifact_type(metadata_store_pb2.ArtifactType(name=cls.TYPE_NAME))
        artifact.type_id = self._types[cls.TYPE_NAME]
        for key, value in custom.items():
            artifact.set_int_custom_property(key, value)
        [artifact.id] = self.store.put_artifacts([artifact.mlmd_artifact])
        return artifact

    def step(self, inputs, outputs):
        [execution] = self.store.put_executions([metadata_store_pb2.Execution(type_id=self.execution_type)])
        events = [metadata_store_pb2.Event(artifact_id=a.id, execution_id=execution, type=metadata_store_pb2.Event.INPUT) for a in inputs]
        events += [metadata_store_pb2.Event(artifact_id=a.id, execution_id=execution, type=metadata_store_pb2.Event.OUTPUT) for a in outputs]
        self.store.put_events(events)


def _two_runs(second_blessed: bool):
    """Run 1: examples -> statistics, a model, blessed. Run 2: new examples -> statistics, a model, blessed or not."""
    s = _Store()
    found = {}
    for run, blessed in ((1, True), (2, second_blessed)):
        examples = s.artifact(standard_artifacts.Examples)
        statistics = s.artifact(standard_artifacts.ExampleStatistics)
        s.step([examples], [statistics])  # StatisticsGen
        transform_graph = s.artifact(standard_artifacts.TransformGraph)
        model = s.artifact(standard_artifacts.Model)
        s.step([examples, transform_graph], [model])  # Trainer
        blessing = s.artifact(standard_artifacts.ModelBlessing, blessed=int(blessed), current_model_id=model.id)
        found[run] = dict(statistics=statistics, model=model, blessing=blessing)
    inputs = {MODEL: [found[r]["model"] for r in (1, 2)], BLESSING: [found[r]["blessing"] for r in (1, 2)],
              STATISTICS: [found[r]["statistics"] for r in (1, 2)]}
    return s.store, inputs, found


def test_the_latest_blessed_model_s_training_data_is_the_baseline():
    store, inputs, found = _two_runs(second_blessed=True)
    resolved = BlessedModelStatisticsStrategy().resolve_artifacts(store, inputs)
    assert [a.id for a in resolved[STATISTICS]] == [found[2]["statistics"].id]


def test_a_model_that_was_not_blessed_does_not_move_the_baseline():
    store, inputs, found = _two_runs(second_blessed=False)
    resolved = BlessedModelStatisticsStrategy().resolve_artifacts(store, inputs)
    assert [a.id for a in resolved[STATISTICS]] == [found[1]["statistics"].id]  # not the newer statistics of a refused run


def test_before_any_blessed_model_there_is_no_baseline():
    store, inputs, _ = _two_runs(second_blessed=False)
    inputs[BLESSING] = [b for b in inputs[BLESSING] if b.get_int_custom_property("blessed") == 0]
    assert BlessedModelStatisticsStrategy().resolve_artifacts(store, inputs)[STATISTICS] == []
    assert BlessedModelStatisticsStrategy().resolve_artifacts(store, {MODEL: [], BLESSING: [], STATISTICS: []})[STATISTICS] == []
