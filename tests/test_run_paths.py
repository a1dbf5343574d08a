"""Recorded paths do not depend on the folder a command starts in, and a report is never replaced by a later one."""

import os

import pytest

from pipeline.config import PipelineConfig
from runs import report
from runs.metadata import resolve_uri


def test_recorded_folders_are_absolute_and_buckets_kept(tmp_path, monkeypatch):
    from pipeline.config import absolute_path

    monkeypatch.chdir(tmp_path)
    config = PipelineConfig(data_dir="data/../data", output_dir="runs/combo")
    assert config.pipeline_root == str(tmp_path / "runs" / "combo" / "tfx")  # where TFX records every artifact
    assert config.metadata_path == str(tmp_path / "runs" / "combo" / "metadata.sqlite")
    assert config.model_serving_dir == str(tmp_path / "runs" / "combo" / "serving" / "influencer_recs")
    assert absolute_path(config.data_dir) == str(tmp_path / "data")  # ExampleGen's input_base
    remote = PipelineConfig(data_dir="gs://b/data", output_dir="gs://b/root")
    assert (remote.pipeline_root, absolute_path(remote.data_dir)) == ("gs://b/root/tfx", "gs://b/data")


@pytest.mark.parametrize(
    "recorded, expected",
    [
        ("runs/combo/tfx/Trainer/model/12", "OUT/tfx/Trainer/model/12"),  # started one folder above
        ("tfx/Transform/transform_graph/5", "OUT/tfx/Transform/transform_graph/5"),  # started inside the output folder
        ("../elsewhere/combo/serving/influencer_recs/1796193668", "OUT/serving/influencer_recs/1796193668"),
        ("/abs/tfx/Trainer/model/1", "/abs/tfx/Trainer/model/1"),
        ("gs://b/root/tfx/Trainer/model/1", "gs://b/root/tfx/Trainer/model/1"),
    ],
)
def test_relative_paths_of_older_runs_resolve_against_the_store_folder(tmp_path, recorded, expected):
    out = tmp_path / "combo"
    assert resolve_uri(recorded, str(out / "metadata.sqlite")) == expected.replace("OUT", str(out))


def test_a_second_report_of_a_run_goes_to_a_new_folder(tmp_path):
    first = report.new_report_dir(str(tmp_path), "2026-12-01T13:01:05.861824")
    assert first == report.report_dir(str(tmp_path), "2026-12-01T13:01:05.861824")
    os.makedirs(first)
    with open(os.path.join(first, report.HTML_FILE), "w") as handle:
        handle.write("the good report")
    second = report.new_report_dir(str(tmp_path), "2026-12-01T13:01:05.861824")
    assert second != first and os.path.dirname(second) == first and not os.path.exists(second)
    assert open(os.path.join(first, report.HTML_FILE)).read() == "the good report"
