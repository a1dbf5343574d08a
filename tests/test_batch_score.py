"""Beam batch scoring: same answers as online `recommend`, every format, dead letters, atomic output."""

import csv
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import TEST_BEAM_ARGS
from data import schema
from serving.versions import resolve_version_dir
from components.batch_scorer.output import PRODUCER, PRODUCER_KEY, SUMMARY_FILE, OutputFolderError, read_dead_letters, read_scores
from components.batch_scorer.job import BatchScoreCountError, NoOwnersError, pipeline_options, run_batch_score

K = 10


def _score(pipeline_run, owners, out_dir, **kwargs):
    kwargs.setdefault("k", K)
    return run_batch_score(pipeline_run.model_serving_dir, owners, str(out_dir), beam_args=list(TEST_BEAM_ARGS), **kwargs)


def _by_owner(out_dir):
    return {row["owner_id"]: row for row in read_scores(str(out_dir))}


def _id_list(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def _history(data_dir):
    hires = {}
    with open(os.path.join(data_dir, schema.HISTORY_FILE), newline="") as handle:
        for row in csv.DictReader(handle):
            hires.setdefault(int(row[schema.OWNER_ID]), set()).add(int(row[schema.HISTORY_INFLUENCER_ID]))
    return hires


@pytest.fixture(scope="module")
def stock_model(pipeline_run):
    return tf.saved_model.load(resolve_version_dir(pipeline_run.model_serving_dir))


@pytest.fixture(scope="module")
def brute_force_run(pipeline_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "brute_force"
    summary = _score(pipeline_run, pipeline_run.data_dir, out, brute_force=True)
    return summary, _by_owner(out)


def _previous_output(out):
    """A folder laid out as an earlier batch-score result (the only kind --out may replace)."""
    (out / "scores").mkdir(parents=True)
    (out / "scores" / "part-old.jsonl").write_text("keep me\n")
    (out / SUMMARY_FILE).write_text(json.dumps({PRODUCER_KEY: PRODUCER, "owners_read": 1}))


def _online(stock_model, owners):
    result = stock_model.signatures["recommend"](owner_id=tf.constant(owners, tf.int64))
    return result["influencer_id"].numpy(), result["score"].numpy()


def test_brute_force_batch_equals_online_recommend(pipeline_run, stock_model, brute_force_run):
    summary, rows = brute_force_run
    owners = sorted(_history(pipeline_run.data_dir))
    assert summary["owners_read"] == len(owners)
    assert summary["owners_scored"] + summary["dead_lettered"] == len(owners)
    assert summary["owners_scored"] == len(rows) == len(owners)  # the pushed model knows every owner of its input
    scored = sorted(rows)
    ids, scores = _online(stock_model, scored)
    hires = _history(pipeline_run.data_dir)
    for n, owner in enumerate(scored):
        assert rows[owner]["influencer_ids"] == ids[n].tolist(), owner
        assert not set(rows[owner]["influencer_ids"]) & hires[owner], owner  # every input row's hire, eval rows too
        np.testing.assert_allclose(rows[owner]["scores"], scores[n], rtol=1e-5, atol=1e-6)


def test_scann_batch_recall_against_online_recommend(pipeline_run, stock_model, tmp_path):
    summary = _score(pipeline_run, pipeline_run.data_dir, tmp_path / "scann")
    rows = _by_owner(tmp_path / "scann")
    assert summary["retrieval"] == "scann" and summary["owners_scored"] == len(rows)
    scored = sorted(rows)
    ids, _ = _online(stock_model, scored)
    recall = np.mean([len(set(ids[n].tolist()) & set(rows[o]["influencer_ids"])) / K for n, o in enumerate(scored)])
    assert all(len(rows[o]["influencer_ids"]) == K for o in scored)
    assert recall >= 0.95, f"ScaNN batch recall@{K} against stock recommend: {recall:.3f}"


def test_unknown_and_non_numeric_owners_are_dead_lettered(pipeline_run, brute_force_run, tmp_path):
    known = sorted(brute_force_run[1])[:3]
    # An id past int64 once sent its whole inference batch (the valid owners too) to the dead letter.
    owners = _id_list(tmp_path / "owners.txt", ["own_id", *known, "abc", "99999999", known[0], str(2**63)])
    out = tmp_path / "out"
    summary = _score(pipeline_run, owners, out, brute_force=True)
    assert (summary["owners_read"], summary["owners_scored"], summary["dead_lettered"]) == (6, 3, 3)
    counters = summary["counters"]
    assert (counters["owners_read"], counters["owners_scored"], counters["unknown_owners"], counters["invalid_owner_ids"]) == (6, 3, 1, 2)
    letters = sorted(read_dead_letters(str(out)), key=lambda d: d["line"])
    assert [(d["owner"], d["line"], d["file"]) for d in letters] == [("abc", 5, owners), ("99999999", 6, owners), (str(2**63), 8, owners)]
    assert letters[0]["reason"].startswith("invalid owner id") and letters[1]["reason"].startswith("unknown owner")
    assert "does not fit a 64-bit integer" in letters[2]["reason"]
    assert json.load(open(out / SUMMARY_FILE))["owners_scored"] == 3


@pytest.mark.parametrize("output_format", ["csv", "tfrecord", "parquet"])
def test_every_format_reads_back_and_exclude_history_drops_hires(pipeline_run, brute_force_run, tmp_path, output_format):
    hires = _history(pipeline_run.data_dir)
    owners = sorted(brute_force_run[1])[:8]
    out = tmp_path / "out"
    _previous_output(out)
    summary = _score(
        pipeline_run, _id_list(tmp_path / "ids.txt", owners), out, output_format=output_format,
        exclude_history=os.path.join(pipeline_run.data_dir, schema.HISTORY_FILE),
    )
    rows = _by_owner(out)
    assert sorted(rows) == owners and summary["owners_scored"] == len(owners)
    for owner, row in rows.items():
        assert len(row["influencer_ids"]) == K and not set(row["influencer_ids"]) & hires[owner]
        assert row["scores"] == sorted(row["scores"], reverse=True)
    assert not (out / "scores" / "part-old.jsonl").exists()  # a previous result is replaced whole


@pytest.mark.parametrize("output_format", ["jsonl", "csv", "tfrecord", "parquet"])
def test_explain_writes_recommend_explained_s_fields_in_every_format(pipeline_run, stock_model, brute_force_run, tmp_path, output_format):
    from components.batch_scorer import records
    from models import explain

    owners = sorted(brute_force_run[1])[:6]
    out = tmp_path / "out"
    summary = _score(pipeline_run, _id_list(tmp_path / "ids.txt", owners), out, output_format=output_format, brute_force=True, explain=True)
    assert summary["explain"] and summary["owners_scored"] == len(owners)
    online = stock_model.signatures["recommend_explained"](owner_id=tf.constant(owners, tf.int64))
    for n, owner in enumerate(owners):
        row = _by_owner(out)[owner]
        assert set(row) == {name for name, _ in records.columns(explain=True)}
        assert row["influencer_ids"] == online["influencer_id"].numpy()[n].tolist()  # the ranking is batch scoring's own, unchanged
        assert row[records.HIRE_IDS_COLUMN] == online[explain.HIRE_IDS_KEY].numpy()[n].ravel().tolist()
        np.testing.assert_allclose(row[records.HIRE_SHARES_COLUMN], online[explain.HIRE_SHARES_KEY].numpy()[n].ravel(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(row[records.TOWER_SHARES_COLUMN], online[explain.TOWER_SHARE_KEY].numpy()[n], rtol=1e-4, atol=1e-5)


def test_dropped_candidates_fall_back_to_exact_scores(pipeline_run, stock_model, brute_force_run, tmp_path):
    """An owner whose exclusions eat ScaNN's over-fetched candidates still gets k results: the exact ones."""
    heavy, light = sorted(brute_force_run[1])[:2]
    ids_file = _id_list(tmp_path / "ids.txt", [heavy, light])
    online = stock_model.signatures["recommend_filtered"](
        owner_id=tf.constant([heavy, light], tf.int64), k=tf.constant([205, 205], tf.int64), max_price=tf.constant([-1.0, -1.0]),
        platform=tf.constant(["", ""]), min_followers=tf.constant([0, 0], tf.int64), required_categories=tf.constant(["", ""]),
        exclude_ids=tf.constant([[-1], [-1]], tf.int64),
    )["influencer_id"].numpy()
    deep = {owner: {"influencer_ids": online[n].tolist()} for n, owner in enumerate([heavy, light])}
    exclude = tmp_path / "exclude.csv"
    with open(exclude, "w") as handle:
        handle.write(f"{schema.OWNER_ID},{schema.HISTORY_INFLUENCER_ID}\n")
        handle.writelines(f"{heavy},{i}\n" for i in deep[heavy]["influencer_ids"][:195])
        handle.writelines(f"{light},{i}\n" for i in deep[light]["influencer_ids"][:3])
    summary = _score(pipeline_run, ids_file, tmp_path / "scann", exclude_history=str(exclude))
    rows = _by_owner(tmp_path / "scann")
    assert rows[heavy]["influencer_ids"] == deep[heavy]["influencer_ids"][195:205]
    assert set(rows[light]["influencer_ids"]) <= set(deep[light]["influencer_ids"][3:])
    assert summary["counters"]["exact_fallbacks"] >= 1


def test_count_mismatch_fails_and_leaves_previous_output_intact(pipeline_run, tmp_path, monkeypatch):
    from components.batch_scorer import output as batch_output

    out = tmp_path / "out"
    _previous_output(out)
    real = batch_output.read_counts
    monkeypatch.setattr(batch_output, "read_counts", lambda *a: {**real(*a), "owners_scored": real(*a)["owners_scored"] - 1})  # one owner lost
    with pytest.raises(BatchScoreCountError, match="lost owners"):
        _score(pipeline_run, _id_list(tmp_path / "ids.txt", ["1", "2", "3"]), out, brute_force=True)
    assert (out / "scores" / "part-old.jsonl").read_text() == "keep me\n"
    assert sorted(os.listdir(tmp_path)) == ["ids.txt", "out"]  # no temp folder left behind


def test_bad_input_files_are_clear_errors_before_anything_runs(pipeline_run, tmp_path):
    from data.validate import DataValidationError

    no_owner_column = tmp_path / "wrong.csv"
    no_owner_column.write_text("owner,inf_id\n1,2\n")
    with pytest.raises(DataValidationError, match=r"wrong.csv line 1, field own_id: expected a history CSV with an own_id column"):
        _score(pipeline_run, str(no_owner_column), tmp_path / "out")
    with pytest.raises(DataValidationError, match=r"wrong.csv line 1, field own_id: expected a history CSV with columns own_id, inf_id"):
        _score(pipeline_run, pipeline_run.data_dir, tmp_path / "out", exclude_history=str(no_owner_column))
    assert sorted(os.listdir(tmp_path)) == ["wrong.csv"]


def test_k_outside_the_index_is_a_clear_error(pipeline_run, tmp_path):
    for k in (0, 10_000):
        with pytest.raises(ValueError, match="k must be between 1 and"):
            _score(pipeline_run, pipeline_run.data_dir, tmp_path / "out", k=k)
    assert not (tmp_path / "out").exists()


def test_beam_options_pass_through_untouched():
    from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, StandardOptions

    from cli.main import parse_args

    args = parse_args(
        ["batch-score", "--model", "m", "--owners", "o", "--out", "x",
         "--", "--runner=DataflowRunner", "--project=p", "--region=europe-west1", "--temp_location=gs://b/tmp"]
    )
    assert args.beam_extra == ["--runner=DataflowRunner", "--project=p", "--region=europe-west1", "--temp_location=gs://b/tmp"]
    options = pipeline_options(args.beam_extra)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == ("p", "europe-west1", "gs://b/tmp")
    default = pipeline_options(None).view_as(DirectOptions)
    assert default.direct_running_mode == "multi_processing" and default.direct_num_workers == (os.cpu_count() or 1)


def test_batch_scorer_component_scores_only_pushed_models(pipeline_run, tmp_path):
    from tfx import v1 as tfx

    from components.batch_scorer.component import BatchScorer, BatchScores
    from pipeline.config import PipelineConfig
    from pipeline.pipeline import create_pipeline

    def run_component(pushed_flag: int, name: str) -> BatchScores:
        pushed = tfx.types.standard_artifacts.PushedModel()
        pushed.uri = str(tmp_path / "pushed")
        pushed.set_int_custom_property("pushed", pushed_flag)
        pushed.set_string_custom_property("pushed_destination", resolve_version_dir(pipeline_run.model_serving_dir))
        scores = BatchScores()
        scores.uri = str(tmp_path / name)
        properties = {"owners": os.path.join(pipeline_run.data_dir, schema.HISTORY_FILE), "k": K, "beam_args": json.dumps(TEST_BEAM_ARGS)}
        BatchScorer.EXECUTOR_SPEC.executor_class().Do({"pushed_model": [pushed]}, {"batch_scores": [scores]}, properties)
        return scores

    skipped = run_component(0, "not_pushed")
    assert skipped.get_int_custom_property("scored") == 0 and not (tmp_path / "not_pushed").exists()
    scored = run_component(1, "pushed_scores")
    rows = read_scores(str(tmp_path / "pushed_scores"))
    assert scored.get_int_custom_property("scored") == 1
    assert scored.get_int_custom_property("owners_scored") == len(rows) > 0 and len(rows[0]["influencer_ids"]) == K

    config = PipelineConfig(data_dir=pipeline_run.data_dir, output_dir=str(tmp_path / "p"), batch_score=True)
    scorer = {node.id: node for node in create_pipeline(config).components}["BatchScorer"]
    assert scorer.inputs["pushed_model"].producer_component_id == "Pusher"
    assert "BatchScorer" not in {n.id for n in create_pipeline(PipelineConfig(data_dir="d", output_dir="o")).components}
    with pytest.raises(ValueError, match="batch_score_k"):
        PipelineConfig(data_dir="d", output_dir="o", batch_score_k=0)


def test_exact_top_k_chunks_drops_exclusions_and_breaks_ties_by_position():
    from models.topk import exact_top_k

    embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], np.float32)
    exclude = [np.array([], np.int64), np.array([2]), np.array([0, 1, 2, 3])]
    for max_cells in (1, 2**24):  # one query per chunk, or all at once
        positions, scores = exact_top_k(queries, embeddings, 3, exclude, max_cells=max_cells)
        assert positions.tolist() == [[0, 1, 3], [3, 0, 1], [-1, -1, -1]]
        assert np.isnan(scores[2]).all() and scores[0].tolist() == [1.0, 1.0, 0.5]


def test_out_is_never_a_folder_of_other_files_or_inputs(pipeline_run, brute_force_run, tmp_path):
    """--out replaces only a previous batch-score result; anything else is refused and left as it was."""
    (tmp_path / "in").mkdir()
    owners = _id_list(tmp_path / "in" / "ids.txt", sorted(brute_force_run[1])[:2])
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.docx").write_text("the user's file")
    with pytest.raises(OutputFolderError, match="not empty and is not a previous batch-score output"):
        _score(pipeline_run, owners, mine, brute_force=True)
    assert os.listdir(mine) == ["report.docx"]
    for out in (tmp_path / "in", tmp_path, pipeline_run.model_serving_dir, os.path.dirname(pipeline_run.model_serving_dir)):
        with pytest.raises(OutputFolderError, match="contains the input"):
            _score(pipeline_run, owners, out, brute_force=True)
    assert os.path.isfile(owners) and os.listdir(pipeline_run.model_serving_dir)


def test_empty_owners_never_replace_a_previous_result(pipeline_run, tmp_path):
    out = tmp_path / "out"
    _previous_output(out)
    for lines in ([], ["own_id"]):
        with pytest.raises(NoOwnersError, match="no owner ids to score"):
            _score(pipeline_run, _id_list(tmp_path / "empty.txt", lines), out, brute_force=True)
        assert (out / "scores" / "part-old.jsonl").read_text() == "keep me\n"


def test_a_killed_runs_staging_folder_is_cleaned_by_the_next_run(pipeline_run, brute_force_run, tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / ".out.abc123.tmp"
    (stale / "scores").mkdir(parents=True)
    (stale / "_writer.json").write_text(json.dumps({"host": __import__("socket").gethostname(), "pid": dead.pid}))
    alive = tmp_path / ".out.def456.tmp"  # a run still writing (this process) is left alone
    alive.mkdir()
    (alive / "_writer.json").write_text(json.dumps({"host": __import__("socket").gethostname(), "pid": os.getpid()}))
    _score(pipeline_run, _id_list(tmp_path / "ids.txt", sorted(brute_force_run[1])[:2]), tmp_path / "out", brute_force=True)
    assert not stale.exists() and alive.exists()
    assert json.load(open(tmp_path / "out" / SUMMARY_FILE))[PRODUCER_KEY] == PRODUCER


def test_the_command_ends_without_tensorflow_shutdown_noise(pipeline_run, tmp_path):
    """Loaded models are freed before interpreter shutdown, in the CLI and in every Beam worker process."""
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "batch-score", "--model", pipeline_run.model_serving_dir, "--owners", pipeline_run.data_dir,
         "--out", str(tmp_path / "out"), "-k", "5"],  # the default runner: multi-processing workers, as users run it
        capture_output=True, text=True, timeout=600, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "written to" in out.stdout
    assert "AtomicFunction" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr[-3000:]


def test_progress_shows_owners_scored_of_owners_read_and_leaves_no_trace(pipeline_run, tmp_path, monkeypatch):
    import re

    from components.batch_scorer import progress as batch_progress
    from models import progress

    from components.batch_scorer import shard

    monkeypatch.setattr(batch_progress, "SHOW_EVERY_S", 0.2)
    monkeypatch.setattr(batch_progress, "WRITE_EVERY_S", 0.0)
    # The sample's 400 owners in 50 batches, each held 50 ms: the scoring spans ~2.5 s of 0.2 s looks on any machine
    # (unslowed, it ended between two looks on CI's, and the watcher saw only the reading).
    embed = shard.query_embeddings
    monkeypatch.setattr(shard, "MAX_BATCH", 8)
    monkeypatch.setattr(shard, "query_embeddings", lambda *args: (time.sleep(0.05), embed(*args))[1])
    lines = []
    with progress.shown(lines.append):
        summary = _score(pipeline_run, pipeline_run.data_dir, tmp_path / "out", brute_force=True)
    assert lines and all(line.startswith("batch-score: ") for line in lines), lines
    scored = [line for line in lines if re.search(r"owners scored, [\d,]+/s", line)]
    assert scored, lines
    assert all(f" / {summary['owners_read']:,} owners scored" in line for line in scored), scored
    assert all(int(re.search(r"batch-score: ([\d,]+)", line).group(1).replace(",", "")) <= summary["owners_read"] for line in scored)
    assert sorted(os.listdir(tmp_path / "out")) == ["dead_letter", "scores", SUMMARY_FILE]  # no .progress folder published
