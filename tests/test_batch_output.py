"""batch-score's output: the --out check (only a new, empty or previous batch-score folder is ever replaced) and the shard files."""

import json
import os

import pytest

from components.batch_scorer import output
from components.batch_scorer.output import MissingShardsError, drop_bookkeeping, read_counts, read_dead_letters, read_scores, write_shard
from data.errors import OutputFolderError


def _previous_output(folder, producer=output.PRODUCER):
    (folder / output.SCORES_DIR).mkdir(parents=True)
    (folder / output.DEAD_LETTER_DIR).mkdir()
    (folder / output.SUMMARY_FILE).write_text(json.dumps({output.PRODUCER_KEY: producer, "owners_read": 3}))
    return folder


def test_new_empty_and_previous_outputs_are_accepted(tmp_path):
    output.check_output_dir(str(tmp_path / "new"), [])
    (tmp_path / "empty").mkdir()
    output.check_output_dir(str(tmp_path / "empty"), [])
    output.check_output_dir(str(_previous_output(tmp_path / "previous")), [str(tmp_path / "owners.csv")])


@pytest.mark.parametrize("change", ["foreign file", "unmarked summary", "other producer", "broken summary"])
def test_any_other_folder_is_refused_naming_what_it_holds(tmp_path, change):
    folder = _previous_output(tmp_path / "out")
    if change == "foreign file":
        (folder / "notes.txt").write_text("mine")
    elif change == "unmarked summary":
        (folder / output.SUMMARY_FILE).write_text("{}")
    elif change == "other producer":
        (folder / output.SUMMARY_FILE).write_text(json.dumps({output.PRODUCER_KEY: "someone else"}))
    else:
        (folder / output.SUMMARY_FILE).write_text("{not json")
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(OutputFolderError, match="is not empty and is not a previous batch-score output.*nothing was changed"):
        output.check_output_dir(str(folder), [])
    assert sorted(p.name for p in folder.iterdir()) == before


def test_an_output_that_contains_an_input_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    for inside in (tmp_path / "out" / "owners.csv", tmp_path / "out" / "models" / "1"):
        with pytest.raises(OutputFolderError, match="contains the input"):
            output.check_output_dir(str(tmp_path / "out"), [str(tmp_path / "elsewhere.csv"), str(inside)])
    with pytest.raises(OutputFolderError, match="contains the input"):  # remote paths are compared as strings
        output.check_output_dir("gs://bucket/out", ["gs://bucket/out/owners.csv"])
    output.check_output_dir(str(tmp_path / "out"), [str(tmp_path / "out-2" / "owners.csv")])  # a sibling is not inside


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(OutputFolderError, match="expected a folder"):
        output.check_output_dir(str(tmp_path / "out"), [])


ROWS = [{"owner_id": 3, "influencer_ids": [5, 1], "scores": [0.5, 0.25]}, {"owner_id": 8, "influencer_ids": [2], "scores": [1.5]}]


@pytest.mark.parametrize("output_format", ["jsonl", "csv", "tfrecord", "parquet"])
def test_a_shard_s_rows_read_back_in_every_format(tmp_path, output_format):
    counts = {"owners_read": 3, "owners_scored": 2, "dead_lettered": 1}
    letter = {"owner": "x", "file": "ids.txt", "line": 4, "reason": "invalid owner id"}
    write_shard(str(tmp_path), 1, 2, ROWS, [letter], output_format, False, counts)
    write_shard(str(tmp_path), 0, 2, [], [], output_format, False, dict.fromkeys(counts, 0))
    assert read_scores(str(tmp_path)) == ROWS
    assert read_dead_letters(str(tmp_path)) == [letter]
    assert sorted(os.listdir(tmp_path / "scores")) == [f"part-0000{n}-of-00002.{output_format}" for n in (0, 1)]
    assert read_counts(str(tmp_path), 2) == counts
    drop_bookkeeping(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["dead_letter", "scores"]


def test_a_retried_shard_replaces_its_files_and_a_missing_shard_is_an_error(tmp_path):
    write_shard(str(tmp_path), 0, 3, ROWS, [], "jsonl", False, {"owners_read": 2})
    write_shard(str(tmp_path), 0, 3, ROWS[:1], [], "jsonl", False, {"owners_read": 1})  # the same shard, run again
    write_shard(str(tmp_path), 2, 3, [], [], "jsonl", False, {"owners_read": 0})
    assert read_scores(str(tmp_path)) == ROWS[:1]
    with pytest.raises(MissingShardsError, match=r"1 of 3 shards wrote no counts \(shards \[1\]\)"):
        read_counts(str(tmp_path), 3)
