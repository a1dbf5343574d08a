"""batch-score's --out check (a pure function): only a new, empty or previous batch-score folder is ever replaced."""

import json

import pytest

from components.batch_scorer import output
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
