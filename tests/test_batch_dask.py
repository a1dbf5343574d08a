"""Beam's DaskRunner, the one cluster engine reachable here, on a real 2-worker distributed.LocalCluster.

Beam 2.74's DaskRunner lacks three things the pipeline's Beam components need (components/beam_options.DASK_GAPS).
The first tests show each gap on the engine itself, so they fail, and send us back to the components, the day a
Beam release closes one. Batch scoring is built from what the runner has (Create, ParDo, GroupByKey, one chain):
it runs on the cluster and writes what the DirectRunner writes. The pipeline refuses the runner up front instead
of writing a wrong or partial result.
"""

import csv
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from components.batch_scorer.job import run_batch_score
from components.beam_options import DASK_RUNNER, BeamOptionError, UnsupportedRunnerError, check_beam_args, dask_beam_args, local_dask_cluster


@pytest.fixture(scope="module")
def dask_cluster():
    with local_dask_cluster(2) as cluster:
        yield cluster


class _Touch(beam.DoFn):
    """Writes one file per element into `folder`: what reached this step, whatever the runner returns."""

    def __init__(self, folder):
        self._folder = folder

    def process(self, element):
        with open(os.path.join(self._folder, str(element)), "w") as handle:
            handle.write("seen")
        yield element


class _EmitsInFinishBundle(beam.DoFn):
    def process(self, element):
        return []

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindow
        from apache_beam.utils.windowed_value import WindowedValue

        yield WindowedValue("written-file", 0, [GlobalWindow()])


def _options(cluster):
    return PipelineOptions(dask_beam_args(cluster.scheduler_address))


def test_dask_runner_hands_a_read_s_consumers_nothing(dask_cluster, tmp_path):
    source = tmp_path / "owners.txt"
    source.write_text("1\n2\n3\n")
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'map'"):
        with beam.Pipeline(options=_options(dask_cluster)) as pipeline:
            pipeline | beam.io.ReadFromText(str(source)) | beam.Map(int)


def test_dask_runner_computes_only_the_last_branch(dask_cluster, tmp_path):
    first, last = tmp_path / "first", tmp_path / "last"
    first.mkdir(), last.mkdir()
    pipeline = beam.Pipeline(options=_options(dask_cluster))
    numbers = pipeline | beam.Create([1, 2, 3])
    numbers | "First" >> beam.ParDo(_Touch(str(first)))
    numbers | "Last" >> beam.ParDo(_Touch(str(last)))
    pipeline.run().wait_until_finish()
    assert sorted(os.listdir(last)) == ["1", "2", "3"]
    assert os.listdir(first) == []  # the DirectRunner runs both branches


def test_dask_runner_drops_what_finish_bundle_emits(dask_cluster, tmp_path):
    pipeline = beam.Pipeline(options=_options(dask_cluster))
    pipeline | beam.Create([1, 2]) | beam.ParDo(_EmitsInFinishBundle()) | beam.ParDo(_Touch(str(tmp_path)))
    pipeline.run().wait_until_finish()
    assert os.listdir(tmp_path) == []


def test_dask_runner_hands_every_partition_all_elements(dask_cluster, tmp_path):
    pipeline = beam.Pipeline(options=_options(dask_cluster))
    parts = pipeline | beam.Create([1, 2, 3, 4]) | beam.Partition(lambda n, count: n % count, 2)
    parts[1] | beam.ParDo(_Touch(str(tmp_path)))
    pipeline.run().wait_until_finish()
    assert sorted(os.listdir(tmp_path)) == ["1", "2", "3", "4"]  # the DirectRunner: the odd ones only


def test_batch_score_on_the_dask_cluster_writes_what_the_direct_runner_writes(dask_cluster, pipeline_run, tmp_path, monkeypatch):
    from conftest import TEST_BEAM_ARGS
    from components.batch_scorer.output import read_dead_letters, read_scores
    from data import schema

    owners = tmp_path / "owners.txt"
    with open(os.path.join(pipeline_run.data_dir, schema.HISTORY_FILE), newline="") as handle:
        known = sorted({int(row[schema.OWNER_ID]) for row in csv.DictReader(handle)})[:300]
    owners.write_text("".join(f"{line}\n" for line in ["own_id", *known, "abc", "99999999", known[0]]))
    exclude = tmp_path / "exclude.csv"
    exclude.write_text(f"own_id,inf_id\n{known[0]},1\n{known[1]},2\n")
    monkeypatch.chdir(tmp_path)  # paths given relative to here; the workers get them absolute, wherever they started
    runs = {}
    for name, args in (("direct", list(TEST_BEAM_ARGS)), ("dask", dask_beam_args(dask_cluster.scheduler_address, partitions=2))):
        out = tmp_path / name
        summary = run_batch_score(pipeline_run.model_serving_dir, owners.name, name, k=10, exclude_history=exclude.name, beam_args=args, brute_force=True)
        assert (summary["owners_source"], summary["exclude_history"]) == (str(owners), str(exclude))
        runs[name] = (summary, read_scores(str(out)), read_dead_letters(str(out)), sorted(os.listdir(out / "scores")))
    (direct, direct_rows, direct_dead, direct_files), (dask, dask_rows, dask_dead, dask_files) = runs["direct"], runs["dask"]
    assert (dask["owners_read"], dask["owners_scored"], dask["dead_lettered"]) == (len(known) + 2, len(known), 2)
    assert dask["counters"] == direct["counters"]
    assert dask_files == direct_files and len(dask_files) == dask["shards"]
    direct_by_owner, dask_by_owner = ({row["owner_id"]: row for row in rows} for rows in (direct_rows, dask_rows))
    assert sorted(dask_by_owner) == sorted(direct_by_owner) == known
    for owner, row in dask_by_owner.items():
        assert row["influencer_ids"] == direct_by_owner[owner]["influencer_ids"], owner
        # Dask's workers run TensorFlow with other thread settings: the same sums, added in another order
        np.testing.assert_allclose(row["scores"], direct_by_owner[owner]["scores"], rtol=1e-5, atol=1e-6)
    assert sorted(dask_dead, key=lambda d: d["line"]) == sorted(direct_dead, key=lambda d: d["line"])


def test_the_dask_runner_s_own_options_are_known_and_checked():
    args = dask_beam_args("tcp://127.0.0.1:8786", partitions=2)
    assert args == [f"--runner={DASK_RUNNER}", "--dask_client_address=tcp://127.0.0.1:8786", "--dask_npartitions=2"]
    check_beam_args(args)  # known options: its module was imported before they were checked
    with pytest.raises(BeamOptionError, match="did you mean --dask_client_address"):
        check_beam_args([args[0], "--dask_client_adress=tcp://127.0.0.1:8786"])
    with pytest.raises(BeamOptionError, match="cannot import no_such_module"):
        check_beam_args(["--runner", "no_such_module.Runner"])


def test_a_pipeline_run_refuses_the_dask_runner_before_its_output_folder_is_touched(tmp_path):
    from pipeline import preflight
    from pipeline.config import PipelineConfig

    config = PipelineConfig(data_dir=str(tmp_path / "data"), output_dir=str(tmp_path / "out"), beam_pipeline_args=dask_beam_args("tcp://127.0.0.1:1"))
    with pytest.raises(UnsupportedRunnerError, match="DaskRunner cannot run the pipeline's components"):
        preflight.check_input(config)
    assert not (tmp_path / "out").exists()
