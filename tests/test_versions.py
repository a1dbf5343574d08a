"""Which folders of a model base are versions (TF Serving's rule), and what the registry serves when they change."""

import os

import pytest

from serving import versions
from serving.versions import Version, list_versions, parse_version, resolve_version_dir


def _version(base, name, saved_model=True):
    path = base / name
    path.mkdir()
    if saved_model:
        (path / "saved_model.pb").write_bytes(b"")
    return path


@pytest.mark.parametrize(
    "name, number",
    [("1", 1), ("01796193999", 1796193999), ("+7", 7), (" 8 ", 8), ("-3", -3), (str(2**63 - 1), 2**63 - 1)],
)
def test_names_that_parse_as_versions(name, number):
    assert parse_version(name) == number


@pytest.mark.parametrize("name", ["²", "١٢", "1.0", "1e3", "1_000", "", "v1", str(2**63), ".tmp-1", "1 2", "0x10"])
def test_names_that_are_not_versions(name):
    assert parse_version(name) is None


def test_odd_folders_are_ignored_with_one_warning_and_versions_load_from_the_folder_listed(tmp_path, caplog):
    versions._warned.clear()
    _version(tmp_path, "²", saved_model=False)
    _version(tmp_path, "01796193999")
    _version(tmp_path, "12")
    (tmp_path / "99").write_text("a file, not a folder")
    _version(tmp_path, ".staging-5")
    with caplog.at_level("WARNING"):
        found = list_versions(str(tmp_path))
        again = list_versions(str(tmp_path))
    assert found == again == [Version(12, "12"), Version(1796193999, "01796193999")]
    assert resolve_version_dir(str(tmp_path)) == str(tmp_path / "01796193999")
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2, warned  # "²" and the file "99", once each; the hidden staging folder is ours
    assert any("'²'" in w for w in warned) and any("'99'" in w for w in warned)


def test_two_names_for_one_number_load_the_later_name(tmp_path, caplog):
    versions._warned.clear()
    _version(tmp_path, "7")
    _version(tmp_path, "007")
    with caplog.at_level("WARNING"):
        assert list_versions(str(tmp_path)) == [Version(7, "7")]
    assert "loaded from '7' instead" in caplog.text


def test_a_base_with_only_odd_folders_has_no_version(tmp_path):
    _version(tmp_path, "²", saved_model=False)
    assert list_versions(str(tmp_path)) == []
    with pytest.raises(FileNotFoundError, match="no SavedModel and no version folder"):
        resolve_version_dir(str(tmp_path))


def _tiny_saved_model(path):
    import tensorflow as tf

    class Echo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="owner_id")])
        def recommend(self, owner_id):
            return {"influencer_id": owner_id + 1}

    module = Echo()
    tf.saved_model.save(module, str(path), signatures={"recommend": module.recommend.get_concrete_function()})


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "model"
    _tiny_saved_model(path)
    return path


def test_registry_serves_past_odd_folders_and_unloads_when_the_only_version_is_deleted(tmp_path, tiny_model):
    import shutil

    from serving.registry import ModelRegistry

    (tmp_path / "²").mkdir()
    shutil.copytree(tiny_model, tmp_path / "0005")
    registry = ModelRegistry(str(tmp_path), "m", poll_seconds=0)
    assert registry.current.version == 5 and registry.current.path == str(tmp_path / "0005")
    assert registry.version_status() == [{"version": "5", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]

    shutil.copytree(tiny_model, tmp_path / "6")
    registry.refresh()
    assert registry.current.version == 6
    shutil.rmtree(tmp_path / "6")
    registry.refresh()
    assert registry.current.version == 5, "the newest remaining version is served once the served one is deleted"
    shutil.rmtree(tmp_path / "0005")
    registry.refresh()
    assert registry.current is None
    assert registry.version_status() == [{"version": "5", "state": "END", "status": {"error_code": "OK", "error_message": ""}}]


def test_app_answers_404_once_no_version_is_left(tmp_path, tiny_model):
    import shutil

    from serving import codec
    from serving.app import ServingApp
    from serving.registry import ModelRegistry

    shutil.copytree(tiny_model, tmp_path / "1")
    registry = ModelRegistry(str(tmp_path), "m", poll_seconds=0)
    app = ServingApp(registry)
    shutil.rmtree(tmp_path / "1")
    registry.refresh()
    with pytest.raises(codec.RequestError, match=r"Servable not found for request: Latest\(m\)"):
        app._servable("m", None)
    assert not os.path.exists(tmp_path / "1")


def test_version_labels_are_answered_as_tf_serving_answers_them_without_a_label_config(tmp_path, tiny_model):
    import json
    import shutil

    from serving.app import ServingApp
    from serving.registry import ModelRegistry

    shutil.copytree(tiny_model, tmp_path / "3")
    app = ServingApp(ModelRegistry(str(tmp_path), "m", poll_seconds=0))
    body = json.dumps({"signature_name": "recommend", "instances": [1]}).encode()
    for method, path in (("POST", "/v1/models/m/labels/stable:predict"), ("GET", "/v1/models/m/labels/can%61ry/metadata")):
        reply = app.handle(method, path, body if method == "POST" else b"")
        assert reply.status == 400, path
        assert json.loads(reply.body)["error"].startswith("Unrecognized servable version label: ")
    assert "canary" in json.loads(app.handle("GET", "/v1/models/m/labels/can%61ry/metadata", b"").body)["error"]
    status = app.handle("GET", "/v1/models/m/labels/stable", b"")
    assert status.status == 200 and json.loads(status.body)["model_version_status"][0]["version"] == "3"
    assert app.handle("POST", "/v1/models/m/versions/3:predict", body).status == 200
