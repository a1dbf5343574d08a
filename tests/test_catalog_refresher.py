"""The CatalogRefresher step (`refresh-catalog --pipeline-output`): the served version over a new influencer file, as a
TFX pipeline run recorded in the run folder's metadata store. On a copy of the shared run's pushed model."""

import csv
import os
import shutil

import pytest

from cli.main import main
from components.catalog_refresher import PUSHED_VERSION_PROPERTY
from data import schema
from pipeline.config import PipelineConfig
from runs.metadata import open_store
from serving import versions
from test_refresh_catalog import _write  # the refresh tests' influencer file writer


@pytest.fixture(scope="module")
def refresh_run(pipeline_run, tmp_path_factory):
    """(config of a run folder holding a copy of the pushed model, its source version, the new file's rows)."""
    out = tmp_path_factory.mktemp("refresh_run")
    config = PipelineConfig(data_dir=pipeline_run.data_dir, output_dir=str(out))
    shutil.copytree(pipeline_run.model_serving_dir, config.model_serving_dir)
    with open(os.path.join(pipeline_run.data_dir, schema.INFLUENCER_FILE), newline="") as handle:
        rows = list(csv.DictReader(handle))
    top = max(int(row["id"]) for row in rows)
    new_rows = rows[2:] + [dict(rows[3], id=str(top + 1))]  # two dropped, one new
    return config, versions.resolve_version_dir(config.model_serving_dir), new_rows


def test_the_step_publishes_the_newest_version_and_records_it_like_a_push(refresh_run, tmp_path, capsys):
    config, source, rows = refresh_run
    assert main(["refresh-catalog", "--pipeline-output", config.output_dir, "--influencers", _write(tmp_path / "new.csv", rows)]) == 0
    newest = versions.resolve_version_dir(config.model_serving_dir)
    assert newest != source and [v.name for v in versions.list_versions(config.model_serving_dir)][-2] == os.path.basename(source)
    assert "1 new, 2 removed" in capsys.readouterr().out

    with open_store(config.metadata_path) as store:
        by_id = {a.id: a for a in store.get_artifacts_by_type("PushedModel")}
        events = store.get_events_by_artifact_ids(list(by_id))
        outputs = [by_id[e.artifact_id] for e in events if e.type == e.OUTPUT]
        inputs = [by_id[e.artifact_id] for e in events if e.type == e.INPUT]
    (refreshed,) = [a for a in outputs if a.uri != source]  # the other output is the Importer's: the served version itself
    props = refreshed.custom_properties
    assert props["pushed"].int_value == 1 and props["pushed_destination"].string_value == newest
    assert props[PUSHED_VERSION_PROPERTY].string_value == os.path.basename(newest)
    assert (props["added"].int_value, props["removed"].int_value) == (1, 2)
    assert [a.uri for a in inputs] == [source]  # lineage: the refreshed version came from the one served


def test_a_file_the_refresh_refuses_exits_2_and_publishes_nothing(refresh_run, tmp_path, capsys):
    config, _, rows = refresh_run
    before = [v.name for v in versions.list_versions(config.model_serving_dir)]
    bad = [dict(row) for row in rows]
    bad[4][schema.PRICE] = "cheap"
    assert main(["refresh-catalog", "--pipeline-output", config.output_dir, "--influencers", _write(tmp_path / "bad.csv", bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and schema.PRICE in err and "Traceback" not in err
    assert [v.name for v in versions.list_versions(config.model_serving_dir)] == before
