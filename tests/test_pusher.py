"""The Pusher executor on a checked-in-sized model folder: atomic versions, the pushed export, blessing."""

import json
import os

import pytest
import tensorflow as tf
from tfx.types import standard_artifacts, standard_component_specs

from components import pusher
from models.trainer import MEASURED_FORMAT, PUSHED_FORMAT


def _model(tmp_path):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "Trainer" / "model" / "7")
    for export, marker in ((MEASURED_FORMAT, "measured"), (PUSHED_FORMAT, "pushed")):
        os.makedirs(os.path.join(model.uri, export, "variables"), exist_ok=True)
        with open(os.path.join(model.uri, export, "saved_model.pb"), "w") as handle:
            handle.write(marker)
    return model


def _push(tmp_path, blessed=True, run=0):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "Pusher" / "pushed_model" / str(run))
    destination = {"filesystem": {"base_directory": str(tmp_path / "serving" / "m")}}
    pusher.Executor().Do(
        {standard_component_specs.MODEL_KEY: [_model(tmp_path)], standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
        {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
        {standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(destination), standard_component_specs.CUSTOM_CONFIG_KEY: "null"},
    )
    return pushed


def test_a_blessed_model_is_published_whole_from_its_pushed_export(tmp_path, monkeypatch):
    monkeypatch.setattr(pusher.time, "time", lambda: 1_800_000_000.4)
    pushed = _push(tmp_path)
    base = tmp_path / "serving" / "m"
    assert sorted(os.listdir(base)) == ["1800000000"]  # no staging folder left beside it
    assert (base / "1800000000" / "saved_model.pb").read_text() == "pushed"  # every row's tables, not the measured ones
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(base / "1800000000")


def test_two_pushes_in_one_second_get_two_versions(tmp_path, monkeypatch):
    monkeypatch.setattr(pusher.time, "time", lambda: 1_800_000_000.0)
    _push(tmp_path, run=0)
    second = _push(tmp_path, run=1)
    assert sorted(os.listdir(tmp_path / "serving" / "m")) == ["1800000000", "1800000001"]
    assert second.get_string_custom_property("pushed_version") == "1800000001"


def test_a_model_not_blessed_is_not_pushed(tmp_path):
    pushed = _push(tmp_path, blessed=False)
    assert not (tmp_path / "serving").exists()
    assert pushed.get_int_custom_property("pushed") == 0


@pytest.mark.parametrize("failing", ["copy", "rename"])
def test_a_push_that_fails_midway_publishes_no_version(tmp_path, monkeypatch, failing):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    if failing == "copy":
        monkeypatch.setattr(pusher.io_utils, "copy_dir", boom)
    else:
        monkeypatch.setattr(tf.io.gfile, "rename", boom)
    with pytest.raises(OSError):
        _push(tmp_path)
    base = tmp_path / "serving" / "m"
    assert not [name for name in os.listdir(base) if not name.startswith(".")]  # a half copy is never a version
