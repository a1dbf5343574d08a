"""The TF Serving REST API of the pushed model: the local stand-in (and tensorflow_model_server when installed).

Contract tests run against every backend; stand-in-only behaviour (limits,
--scann, hot reload) runs against the stand-in. The stand-in runs in-process
(the same Tornado server as `serve`, on a free loopback port), so the module takes seconds, not minutes.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional, Tuple

import numpy as np
import pytest

MODEL_NAME = "influencer_recs"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNKNOWN_OWNER = 987_654_321
NO_FILTER = {"max_price": -1.0, "platform": "", "min_followers": 0, "required_categories": "", "exclude_ids": [-1]}


# -- servers -------------------------------------------------------------------
class StandIn:
    """The stand-in's app on the server `serve` runs (serving.app.HttpServer), in a thread of this process."""

    def __init__(self, app, idle_timeout: float = 50.0):
        from serving.app import HttpServer

        self.app = app
        self.server = HttpServer(app, "127.0.0.1", 0, idle_timeout=idle_timeout)
        self.port = self.server.port

    def close(self) -> None:
        self.server.close()
        self.app.registry.stop()


class ModelServer:
    """tensorflow_model_server as a subprocess (only where it is installed)."""

    def __init__(self, binary: str, base_path: str):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.proc = subprocess.Popen(
            [binary, f"--rest_api_port={self.port}", "--port=0", f"--model_name={MODEL_NAME}", f"--model_base_path={os.path.abspath(base_path)}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if request(self.port, "GET", f"/v1/models/{MODEL_NAME}")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        self.close()
        raise RuntimeError("tensorflow_model_server did not come up")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def request(port: int, method: str, path: str, body: Any = None, raw: Optional[bytes] = None) -> Tuple[int, Dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, json.loads(payload)


def predict(port: int, body: Any, version: Optional[int] = None, verb: str = "predict") -> Tuple[int, Dict]:
    where = f"/versions/{version}" if version is not None else ""
    return request(port, "POST", f"/v1/models/{MODEL_NAME}{where}:{verb}", body)


def make_standin(base_path: str, idle_timeout: float = 50.0, **options) -> StandIn:
    from serving.app import make_app

    return StandIn(make_app(base_path, MODEL_NAME, **options), idle_timeout=idle_timeout)


# -- fixtures ------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_path(pipeline_run) -> str:
    return pipeline_run.model_serving_dir


@pytest.fixture(scope="module")
def version(base_path) -> int:
    from serving.versions import resolve_version_dir

    return int(os.path.basename(resolve_version_dir(base_path)))


@pytest.fixture(scope="module")
def standin(base_path):
    server = make_standin(base_path, poll_seconds=0)
    yield server
    server.close()


@pytest.fixture(scope="module", params=["stand-in", "tensorflow_model_server"])
def backend(request, standin, base_path):
    """The port of a server speaking TF Serving's REST API."""
    if request.param == "stand-in":
        yield standin.port
        return
    binary = shutil.which("tensorflow_model_server")
    if binary is None:
        pytest.skip("tensorflow_model_server not on PATH: it cannot be installed here (see deploy/tf_serving/README.md)")
    server = ModelServer(binary, base_path)
    yield server.port
    server.close()


@pytest.fixture(scope="module")
def saved_model(base_path):
    """The pushed SavedModel loaded in-process: the reference for REST answers."""
    import tensorflow as tf

    from serving.versions import resolve_version_dir

    return tf.saved_model.load(resolve_version_dir(base_path))


@pytest.fixture(scope="module")
def owners(pipeline_run):
    import csv

    with open(os.path.join(pipeline_run.data_dir, "historical_data.csv"), newline="") as handle:
        ids = sorted({int(float(row["own_id"])) for row in csv.DictReader(handle)})
    return ids[:3]


def _needs_filtered(saved_model) -> None:
    if "recommend_filtered" not in saved_model.signatures:
        pytest.skip("this model predates the filtered signatures (recommend_filtered)")


def _in_process(saved_model, signature: str, **inputs) -> Dict[str, np.ndarray]:
    import tensorflow as tf

    specs = saved_model.signatures[signature].structured_input_signature[1]
    return {k: v.numpy() for k, v in saved_model.signatures[signature](**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()}).items()}


# -- status and metadata -------------------------------------------------------
def test_status_reports_the_newest_version_available(backend, version):
    status, body = request(backend, "GET", f"/v1/models/{MODEL_NAME}")
    assert status == 200
    assert body == {"model_version_status": [{"version": str(version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    status, body = request(backend, "GET", f"/v1/models/{MODEL_NAME}/versions/{version}")
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize("suffix", ["", "/versions/{v}"])
def test_metadata_has_tf_serving_signature_defs(backend, version, suffix):
    status, body = request(backend, "GET", f"/v1/models/{MODEL_NAME}{suffix.format(v=version)}/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": MODEL_NAME, "signature_name": "", "version": str(version)}
    defs = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "recommend", "recommend_cold_start", "query_embedding"} <= set(defs)
    recommend = defs["recommend"]
    assert recommend["method_name"] == "tensorflow/serving/predict"
    assert recommend["inputs"]["owner_id"]["dtype"] == "DT_INT64"
    assert recommend["inputs"]["owner_id"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert recommend["outputs"]["influencer_id"]["dtype"] == "DT_INT64"
    assert recommend["outputs"]["score"]["dtype"] == "DT_FLOAT"


# -- predict -------------------------------------------------------------------
def test_recommend_row_format_equals_the_saved_model(backend, saved_model, owners):
    batch = list(owners)
    status, body = predict(backend, {"signature_name": "recommend", "instances": [{"owner_id": o} for o in batch]})
    assert status == 200, body
    expected = _in_process(saved_model, "recommend", owner_id=batch)
    assert len(body["predictions"]) == len(batch)
    for row, prediction in enumerate(body["predictions"]):
        assert set(prediction) == {"influencer_id", "score", "num_results", "num_qualified"}
        assert prediction["influencer_id"] == expected["influencer_id"][row].tolist()
        np.testing.assert_allclose(prediction["score"], expected["score"][row], rtol=1e-6)
        assert prediction["num_results"] == 10


def test_recommend_explained_row_format_equals_the_saved_model(backend, saved_model, owners):
    from models import explain

    status, body = predict(backend, {"signature_name": "recommend_explained", "instances": [{"owner_id": o} for o in owners]})
    assert status == 200, body
    expected = _in_process(saved_model, "recommend_explained", owner_id=list(owners))
    plain = _in_process(saved_model, "recommend", owner_id=list(owners))
    for row, prediction in enumerate(body["predictions"]):
        assert set(prediction) == {"influencer_id", "score", "num_results", "num_qualified", *explain.EXPLANATION_KEYS}
        assert prediction["influencer_id"] == plain["influencer_id"][row].tolist()  # the ranking recommend gives
        assert prediction[explain.HIRE_IDS_KEY] == expected[explain.HIRE_IDS_KEY][row].tolist()  # [k][3] per owner
        np.testing.assert_allclose(prediction[explain.HIRE_SHARES_KEY], expected[explain.HIRE_SHARES_KEY][row], rtol=1e-5, atol=1e-6)


def test_an_unknown_owner_is_a_400_naming_it_not_a_list_of_everyones_favourites(backend, owners):
    status, body = predict(backend, {"signature_name": "recommend", "instances": [{"owner_id": o} for o in owners + [UNKNOWN_OWNER]]})
    assert status == 400
    assert f"owner_id {UNKNOWN_OWNER} has no hires" in body["error"] and "recommend_cold_start" in body["error"]


def test_columnar_and_bare_instances_give_the_same_answer(backend, owners):
    status, rows = predict(backend, {"signature_name": "recommend", "instances": [{"owner_id": o} for o in owners]})
    assert status == 200
    status, columns = predict(backend, {"signature_name": "recommend", "inputs": {"owner_id": owners}})
    assert status == 200, columns
    assert columns["outputs"]["influencer_id"] == [r["influencer_id"] for r in rows["predictions"]]
    # One-input signatures also take bare values, in both forms.
    for body in ({"signature_name": "recommend", "instances": owners}, {"signature_name": "recommend", "inputs": owners}):
        status, bare = predict(backend, body)
        assert status == 200, bare
        got = bare.get("predictions") or bare["outputs"]
        ids = [r["influencer_id"] for r in got] if isinstance(got, list) else got["influencer_id"]
        assert ids == columns["outputs"]["influencer_id"]


def test_single_output_signature_returns_bare_values(backend, saved_model, owners):
    import tensorflow as tf

    example = tf.train.Example()
    feature = example.features.feature
    feature["own_id"].int64_list.value.append(owners[0])
    feature["inf_id"].int64_list.value.append(int(saved_model.catalog_ids.numpy()[0]))
    for name, count in zip(("insta_follower", "tiktok", "youtube"), saved_model.catalog_followers.numpy()[0].tolist()):
        feature[name].int64_list.value.append(count)
    feature["price_normalized"].float_list.value.append(float(saved_model.catalog_price.numpy()[0]))
    feature["categories"].bytes_list.value.extend(saved_model.catalog_categories.numpy()[0].split(b","))
    feature["star_rating"].int64_list.value.append(4)
    feature["sentiment_rating"].float_list.value.append(0.5)
    encoded = __import__("base64").b64encode(example.SerializeToString()).decode()
    status, body = predict(backend, {"instances": [{"b64": encoded}]})  # serving_default, one output: predictions
    assert status == 200, body
    expected = saved_model.signatures["serving_default"](examples=tf.constant([example.SerializeToString()]))["predictions"].numpy()
    assert body["predictions"] == pytest.approx(expected.tolist(), abs=1e-6)  # the rating head's own number, bare


def test_cold_start_equals_the_saved_model(backend, saved_model):
    status, body = predict(backend, {"signature_name": "recommend_cold_start", "instances": [{"categories": "Action,Drama", "budget": 0.4}]})
    assert status == 200, body
    expected = _in_process(saved_model, "recommend_cold_start", categories=[b"Action,Drama"], budget=[0.4])
    assert body["predictions"][0]["influencer_id"] == expected["influencer_id"][0].tolist()


# -- filters (the lead's recommend_filtered) -----------------------------------
def _filtered(port, owner, **overrides):
    return predict(port, {"signature_name": "recommend_filtered", "instances": [{"owner_id": owner, "k": 10, **NO_FILTER, **overrides}]})


def test_filtered_k_and_price_and_exclusions(backend, saved_model, owners):
    _needs_filtered(saved_model)
    ids = saved_model.catalog_ids.numpy()
    price = dict(zip(ids.tolist(), saved_model.catalog_price.numpy().tolist()))
    status, body = _filtered(backend, owners[0], k=3)
    assert status == 200, body
    first = body["predictions"][0]
    assert len(first["influencer_id"]) == 3 and first["num_results"] == 3
    excluded = first["influencer_id"][:2]
    status, body = _filtered(backend, owners[0], k=5, max_price=0.5, exclude_ids=excluded)
    assert status == 200, body
    got = body["predictions"][0]
    filled = [i for i in got["influencer_id"] if i != -1]
    assert len(filled) == got["num_results"] > 0  # padding only where fewer than k qualify, never all of it
    assert not set(filled) & set(excluded)
    assert all(price[i] <= 0.5 + 1e-6 for i in filled)


def test_filtered_platform_and_categories(backend, saved_model, owners):
    _needs_filtered(saved_model)
    ids = saved_model.catalog_ids.numpy().tolist()
    followers = dict(zip(ids, saved_model.catalog_followers.numpy().tolist()))
    categories = dict(zip(ids, [c.decode().split(",") for c in saved_model.catalog_categories.numpy()]))
    status, body = _filtered(backend, owners[1], platform="youtube", min_followers=100_000, required_categories="Action")
    assert status == 200, body
    got = [i for i in body["predictions"][0]["influencer_id"] if i != -1]
    assert got and all(followers[i][2] >= 100_000 and "Action" in categories[i] for i in got)
    assert body["predictions"][0]["num_qualified"] >= len(got)


@pytest.mark.parametrize("k, message", [(0, "k must be at least 1"), (10**6, "k must be at most")])
def test_filtered_k_out_of_range_is_a_400_with_the_graphs_message(backend, saved_model, owners, k, message):
    _needs_filtered(saved_model)
    status, body = _filtered(backend, owners[0], k=k)
    assert status == 400
    assert body["error"].startswith(message)
    assert "Graph execution" not in body["error"] and "Detected at node" not in body["error"]


def test_filtered_bad_platform_is_a_400(backend, saved_model, owners):
    _needs_filtered(saved_model)
    status, body = _filtered(backend, owners[0], platform="myspace", min_followers=1)
    assert status == 400 and body["error"].startswith("platform must be one of")


# -- bad requests: tests/test_tf_serving_contract.py (TF Serving's own texts, with their sources) --------


@pytest.mark.parametrize("verb, kind", [("regress", "regression"), ("classify", "classification")])
def test_regress_and_classify_refuse_predict_signatures(backend, verb, kind):
    status, body = predict(backend, {"signature_name": "recommend", "examples": [{"owner_id": 1}]}, verb=verb)
    assert status == 400
    assert body["error"] == f"Expected {kind} signature method_name to be tensorflow/serving/{verb}. Was: tensorflow/serving/predict"


def test_batch_and_body_limits(standin):
    from serving.app import ServingApp

    limited = StandIn(ServingApp(standin.app.registry, max_batch=4, max_body_bytes=2000))  # same loaded model
    try:
        status, body = predict(limited.port, {"signature_name": "recommend", "instances": list(range(5))})
        assert status == 400 and "--max-batch 4" in body["error"]
        status, body = predict(limited.port, {"signature_name": "recommend", "inputs": {"owner_id": list(range(5))}})
        assert status == 400 and "--max-batch 4" in body["error"]
        status, body = predict(limited.port, {"signature_name": "recommend", "instances": [1] * 1000})
        assert status == 413 and "2000 bytes" in body["error"]
        status, body = predict(limited.port, {"signature_name": "recommend", "instances": [1, 2, 3, 4]})
        assert status == 200 and len(body["predictions"]) == 4
    finally:
        limited.server.close()  # the shared registry stays up for the other tests


def test_concurrent_good_and_bad_requests_are_all_answered_correctly(standin, owners):
    expected = {}
    for owner in owners:
        status, body = predict(standin.port, {"signature_name": "recommend", "instances": [{"owner_id": owner}]})
        expected[owner] = body["predictions"][0]["influencer_id"]
    jobs = []
    for n in range(48):
        owner = owners[n % len(owners)]
        if n % 3 == 0:
            jobs.append(({"signature_name": "recommend", "instances": [{"owner_id": "bad"}]}, 400, None))
        elif n % 3 == 1:
            jobs.append(({"signature_name": "recommend", "instances": [{"owner_id": owner}]}, 200, expected[owner]))
        else:
            jobs.append(({"signature_name": "recommend", "instances": []}, 400, None))

    def run(job):
        body, want_status, want_ids = job
        status, got = predict(standin.port, body)
        return status == want_status and (want_ids is None and "error" in got or want_ids == got.get("predictions", [{}])[0].get("influencer_id"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, jobs))
    assert all(results), f"{results.count(False)} of {len(results)} concurrent requests got a wrong answer"


def test_batched_concurrent_requests_get_the_answer_each_gets_alone(standin, saved_model, pipeline_run):
    """Server-side batching (on by default): many owners at once, one unknown among them; each answer is its own."""
    import csv

    with open(os.path.join(pipeline_run.data_dir, "historical_data.csv"), newline="") as handle:
        known = sorted({int(float(row["own_id"])) for row in csv.DictReader(handle)})[:40]
    known = [o for o in known if _in_process(saved_model, "query_embedding", owner_id=[o])["history_size"][0] > 0][:24]
    alone = {o: _in_process(saved_model, "recommend", owner_id=[o]) for o in known}
    batcher = standin.app.batcher
    calls, requests = batcher.calls, batcher.requests
    jobs = [known[n % len(known)] for n in range(96)] + [UNKNOWN_OWNER] * 8

    def run(owner):
        return owner, predict(standin.port, {"signature_name": "recommend", "instances": [{"owner_id": owner}]})

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(run, jobs))
    for owner, (status, body) in answers:
        if owner == UNKNOWN_OWNER:
            assert status == 400 and f"owner_id {UNKNOWN_OWNER} has" in body["error"] and "," not in body["error"].split(" has")[0]
            continue
        assert status == 200, body
        assert body["predictions"][0]["influencer_id"] == alone[owner]["influencer_id"][0].tolist()
        np.testing.assert_allclose(body["predictions"][0]["score"], alone[owner]["score"][0], rtol=1e-4, atol=1e-5)
    assert batcher.requests - requests > batcher.calls - calls  # some calls answered several requests


# -- --scann --------------------------------------------------------------------
def test_scann_serving_equals_the_scann_saved_model(base_path, owners, version):
    import scann  # noqa: F401
    import tensorflow as tf

    from models.index import SCANN_SUBDIR

    reference = tf.saved_model.load(os.path.join(base_path, str(version), SCANN_SUBDIR)).signatures["recommend"]
    expected = reference(owner_id=tf.constant(owners, tf.int64))["influencer_id"].numpy()
    server = make_standin(base_path, scann=True, poll_seconds=0)
    try:
        status, body = predict(server.port, {"signature_name": "recommend", "instances": [{"owner_id": o} for o in owners]})
        assert status == 200, body
        assert [p["influencer_id"] for p in body["predictions"]] == expected.tolist()
        status, meta = request(server.port, "GET", f"/v1/models/{MODEL_NAME}/metadata")
        assert "search" in meta["metadata"]["signature_def"]["signature_def"]
        status, body = predict(server.port, {"signature_name": "recommend_cold_start", "instances": [{"categories": "Drama", "budget": 0.3}]})
        assert status == 200, body  # the other signatures still come from the stock model
    finally:
        server.close()


# -- hot reload -------------------------------------------------------------------
def _wait_for(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def _versions(port: int) -> Dict[str, Tuple[str, str]]:
    entries = request(port, "GET", f"/v1/models/{MODEL_NAME}")[1]["model_version_status"]
    return {e["version"]: (e["state"], e["status"]["error_message"]) for e in entries}


def test_new_versions_are_served_without_restart_and_broken_ones_reported(base_path, version, owners, tmp_path):
    base = tmp_path / MODEL_NAME
    shutil.copytree(os.path.join(base_path, str(version)), base / str(version))
    broken = base / str(version + 1)  # newest at start-up but cannot load: the older one is served
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    server = make_standin(str(base), poll_seconds=0.2)
    try:
        versions = _versions(server.port)
        assert versions[str(version)] == ("AVAILABLE", "")
        assert versions[str(version + 1)][0] == "END" and versions[str(version + 1)][1]
        status, before = predict(server.port, {"signature_name": "recommend", "instances": [owners[0]]})
        assert status == 200

        staged = base / ".staging-new"  # hidden: a push in progress, not a version
        shutil.copytree(base / str(version), staged)
        server.app.registry.refresh()  # what each poll does
        assert _versions(server.port)[str(version)][0] == "AVAILABLE"
        os.rename(staged, base / str(version + 2))
        assert _wait_for(lambda: _versions(server.port).get(str(version + 2), ("",))[0] == "AVAILABLE"), "the new version was not picked up"
        status, after = predict(server.port, {"signature_name": "recommend", "instances": [owners[0]]}, version=version + 2)
        assert status == 200 and after["predictions"] == before["predictions"]
        assert predict(server.port, {"signature_name": "recommend", "instances": [owners[0]]}, version=version)[0] == 404

        broken = base / str(version + 3)  # a broken push after start-up: reported, the served version stays
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel either")
        assert _wait_for(lambda: _versions(server.port).get(str(version + 3), ("",))[0] == "END"), "the broken version was not reported"
        assert _versions(server.port)[str(version + 2)][0] == "AVAILABLE"
        status, still = predict(server.port, {"signature_name": "recommend", "instances": [owners[0]]})
        assert status == 200 and still["predictions"] == before["predictions"]
    finally:
        server.close()


def test_a_version_seen_half_copied_is_served_once_the_copy_completes(base_path, version, owners, tmp_path):
    """TF Serving retries failed loads; a version that failed while still being copied was once never tried again."""
    base = tmp_path / MODEL_NAME
    shutil.copytree(os.path.join(base_path, str(version)), base / str(version))
    server = make_standin(str(base), poll_seconds=0.2)
    try:
        source, target = base / str(version), base / str(version + 1)
        # The copy has begun: every folder and the top-level files (saved_model.pb) are there, the variables are not.
        shutil.copytree(source, target, ignore=lambda folder, names: [n for n in names if folder != str(source) and os.path.isfile(os.path.join(folder, n))])
        assert _wait_for(lambda: _versions(server.port).get(str(version + 1), ("",))[0] == "END"), "the half-copied version was not tried"
        for path in sorted(p for p in source.rglob("*") if p.is_file() and p.parent != source):
            shutil.copy2(path, target / path.relative_to(source))  # slowly, inside the subfolders (the version folder's mtime stays)
            time.sleep(0.05)
        assert _wait_for(lambda: _versions(server.port).get(str(version + 1), ("",))[0] == "AVAILABLE"), "the completed copy was never retried"
        assert predict(server.port, {"signature_name": "recommend", "instances": [owners[0]]}, version=version + 1)[0] == 200
    finally:
        server.close()


# -- deployment files and CLI -----------------------------------------------------
def test_models_config_is_a_model_server_config_for_the_pushed_layout():
    pytest.importorskip("tensorflow_serving.config.model_server_config_pb2", reason="tensorflow-serving-api not installed")
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    from pipeline.config import PipelineConfig

    path = os.path.join(REPO_ROOT, "deploy", "tf_serving", "models.config")
    config = text_format.Parse(open(path).read(), model_server_config_pb2.ModelServerConfig())
    models = {m.name: m for m in config.model_config_list.config}
    assert MODEL_NAME in models
    model = models[MODEL_NAME]
    assert model.model_platform == "tensorflow"
    assert model.base_path == f"/models/{MODEL_NAME}"  # where the README's docker --mount puts the pushed base
    readme = open(os.path.join(REPO_ROOT, "deploy", "tf_serving", "README.md")).read()
    local_base = os.path.relpath(PipelineConfig(data_dir="", output_dir="var/run").model_serving_dir)
    assert f"source=$PWD/{local_base},target={model.base_path}" in readme


def test_cli_parses_serve_and_bench_serving():
    from cli.main import parse_args

    args = parse_args(["serve", "--model-base-path", "m", "--model-name", "n", "--scann", "--poll-seconds", "2"])
    assert (args.port, args.host, args.scann, args.poll_seconds) == (8501, "127.0.0.1", True, 2.0)
    args = parse_args(["bench-serving", "--model-base-path", "m", "--seconds", "5", "--levels", "1", "8"])
    assert (args.seconds, args.levels, args.model_name) == (5.0, [1, 8], MODEL_NAME)


def test_serve_command_announces_where_it_serves(base_path, version):
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--model-base-path", base_path, "--model-name", MODEL_NAME, "--port", "0", "--poll-seconds", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO_ROOT,
    )
    try:
        line = proc.stdout.readline().strip()  # blocks until the model is loaded and the port bound
        prefix = f"Serving {MODEL_NAME} from {os.path.abspath(base_path)} at http://127.0.0.1:"
        assert line.startswith(prefix) and line.endswith(f" (version {version})"), line
        port = int(line[len(prefix) :].split()[0])
        assert request(port, "GET", f"/v1/models/{MODEL_NAME}")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_bench_writes_only_its_own_benchmarks_section(tmp_path):
    from benchmarks.serving import BASELINE, HEADING, write_markdown

    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# Benchmarks\n\n## Quality\nkeep me\n\n{HEADING}\nold numbers\n\n## Later section\nkeep me too\n")
    level = {"qps": 100.0, "p50": 5.0, "p95": 12.0, "p99": 25.0, "requests": 500, "errors": 0}
    report = {
        "results": {BASELINE: {8: dict(level, p99=9.0, qps=250.0)}, "REST": {8: dict(level, server_cpu_ms=3.0)}},
        "catalog_size": 6406, "version_dir": "m/1", "seconds": 5.0, "levels": [8], "cpu": {"cpu_ms": 0.8, "wall_ms": 1.0},
        "cpu_scann": {"cpu_ms": 0.9, "wall_ms": 1.2}, "app_cpu": 1.1, "load_before": 1.0, "load_after": 1.5,
    }
    write_markdown(report, str(path), "m")
    text = path.read_text()
    assert "keep me\n" in text and "keep me too" in text and "old numbers" not in text
    assert text.count(HEADING) == 1 and "catalog of 6,406 influencers" in text
    assert '(`{"signature_name":"recommend","instances":[{"owner_id":N}]}`)' in text
    assert "p99 at 8 clients, REST: 25.0 ms (NOT met)" in text and "p99 at 8 clients, in-process" not in text
    assert "throughput at 8 clients, REST: 100 vs 250 queries/s in-process = 0.40x (NOT met)" in text
    assert text.index("## Quality") < text.index(HEADING) < text.index("## Later section")


def test_repeated_levels_report_medians_and_ranges():
    from benchmarks.serving import combine, format_table

    runs = [{"qps": q, "p50": 5.0, "p95": 9.0, "p99": p, "requests": 10, "errors": e} for q, p, e in ((800, 15.0, 0), (900, 13.0, 1), (700, 19.0, 0))]
    combined = combine(runs)
    assert (combined["qps"], combined["p99"], combined["requests"], combined["errors"]) == (800, 15.0, 30, 1)
    assert combined["qps_range"] == (700, 900) and combined["p99_range"] == (13.0, 19.0)
    row = format_table({"results": {"REST": {8: combined}}})[2]
    assert row == "| REST | 8 | 800 (700-900) | 5.0 | 9.0 | 15.0 (13.0-19.0) | - | 30 | 1 |"


# -- connections (TF Serving's HTTP server: HTTP/1.1 keep-alive, pipelining, idle timeout) ------------------

def _raw_predict(owner: int) -> bytes:
    body = json.dumps({"signature_name": "recommend", "instances": [{"owner_id": owner}]}).encode()
    head = f"POST /v1/models/{MODEL_NAME}:predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _read_responses(sock: socket.socket, count: int, seconds: float = 60.0) -> list:
    """`count` HTTP responses from the socket: (status, headers, body)."""
    sock.settimeout(seconds)
    buffer, responses = b"", []
    while len(responses) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
        while b"\r\n\r\n" in buffer:
            head, rest = buffer.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
            length = int(headers.get("content-length", 0))
            if len(rest) < length:
                break
            responses.append((int(lines[0].split()[1]), headers, rest[:length]))
            buffer = rest[length:]
    return responses


def test_one_connection_serves_many_requests_and_answers_pipelined_ones_in_order(standin, owners):
    with socket.create_connection(("127.0.0.1", standin.port)) as sock:
        for owner in owners[:3]:  # keep-alive: one request after another on the same connection
            sock.sendall(_raw_predict(owner))
            [(status, headers, _)] = _read_responses(sock, 1)
            assert status == 200 and headers.get("connection", "").lower() != "close"
        sock.sendall(b"".join(_raw_predict(owner) for owner in owners))  # pipelined: all in one write
        answers = _read_responses(sock, len(owners))
    assert [status for status, _, _ in answers] == [200] * len(owners)
    singles = [predict(standin.port, {"signature_name": "recommend", "instances": [{"owner_id": o}]})[1] for o in owners]
    assert [json.loads(body) for _, _, body in answers] == singles


def test_idle_connections_are_closed_after_the_idle_timeout(base_path, owners):
    server = make_standin(base_path, idle_timeout=1.0, poll_seconds=0)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(_raw_predict(owners[0]))
            assert _read_responses(sock, 1)[0][0] == 200
            time.sleep(2.5)
            sock.settimeout(10)
            assert sock.recv(1) == b""  # the server closed it
    finally:
        server.close()


def test_a_half_sent_body_is_closed_after_the_idle_timeout_and_holds_no_worker(standin, base_path, owners):
    from serving.app import HttpServer

    server = HttpServer(standin.app, "127.0.0.1", 0, idle_timeout=1.0, workers=1)  # one worker: a held one would block the next request
    try:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"POST /v1/models/influencer_recs:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 20)
        started = time.monotonic()
        status, body = predict(server.port, {"signature_name": "recommend", "instances": [{"owner_id": owners[0]}]})
        assert status == 200 and len(body["predictions"]) == 1  # answered while the slow body is still pending
        slow.settimeout(15)
        assert slow.recv(1) == b"" and time.monotonic() - started < 10  # closed after about the idle timeout, not held
        slow.close()
    finally:
        server.close()


@pytest.mark.parametrize("chunked", [False, True])
def test_any_body_over_the_limit_gets_the_documented_413(standin, chunked):
    from serving.app import ServingApp

    limited = StandIn(ServingApp(standin.app.registry, max_body_bytes=2000))
    size = 40 * 2**20  # past the 33 MiB where Tornado used to cut in with an empty 400
    try:
        with socket.create_connection(("127.0.0.1", limited.port)) as sock:
            head = b"POST /v1/models/influencer_recs:predict HTTP/1.1\r\nHost: x\r\n"
            piece = b" " * 2**20
            if chunked:
                sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
                for _ in range(size // len(piece)):
                    sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
            else:
                sock.sendall(head + b"Content-Length: %d\r\n\r\n" % size)
                for _ in range(size // len(piece)):
                    sock.sendall(piece)
            [(status, _, body)] = _read_responses(sock, 1)
        assert status == 413
        assert f"request body of {size} bytes exceeds the server's limit of 2000 bytes" in json.loads(body)["error"]
    finally:
        limited.server.close()


def test_lists_nested_deeper_than_any_tensor_are_a_400_naming_the_input(backend):
    deep = 7
    for _ in range(100):
        deep = [deep]
    for body in ({"signature_name": "recommend", "instances": [{"owner_id": deep}]}, {"signature_name": "recommend", "inputs": {"owner_id": deep}}):
        status, answer = predict(backend, body)
        assert status == 400 and "owner_id" in answer["error"], answer


def _random_json(rng, depth=0):
    kind = rng.integers(0, 9 if depth < 6 else 6)
    if kind == 0:
        return int(rng.integers(-2**63, 2**63 - 1)) if rng.random() < 0.5 else int(rng.integers(0, 50))
    if kind == 1:
        return float(rng.choice([0.5, -1e308, 1e308, 3.4e39, -0.0, 1e-320]))
    if kind == 2:
        return str(rng.choice(["", "Drama", "\u00e9\u00e9", "instagram", "a" * 300, "1"]))
    if kind == 3:
        return bool(rng.random() < 0.5)
    if kind == 4:
        return None
    if kind == 5:
        return {"b64": str(rng.choice(["/w==", "not base64!", ""]))}
    if kind == 6:
        nested = 7
        for _ in range(int(rng.integers(1, 120))):
            nested = [nested]
        return nested
    if kind == 7:
        return [_random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))]
    keys = ["owner_id", "k", "budget", "categories", "max_price", "platform", "min_followers", "required_categories", "exclude_ids", "x"]
    return {str(rng.choice(keys)): _random_json(rng, depth + 1) for _ in range(int(rng.integers(0, 4)))}


def test_no_client_input_gets_a_server_error(standin):
    """Random JSON shapes, depths and types against every signature: only 200 and 4xx, each with a JSON error body."""
    rng = np.random.default_rng(0)
    signatures = sorted(standin.app.registry.current.signatures) + ["nope"]
    statuses = set()
    for case in range(600):
        signature = str(rng.choice(signatures))
        payload = {"signature_name": signature, ("instances" if rng.random() < 0.5 else "inputs"): _random_json(rng)}
        if rng.random() < 0.2:
            payload = _random_json(rng)
        reply = standin.app.handle("POST", "/v1/models/influencer_recs:predict", json.dumps(payload).encode())
        statuses.add(reply.status)
        assert reply.status == 200 or 400 <= reply.status < 500, (case, payload, reply.body[:300])
        assert reply.status == 200 or "error" in json.loads(reply.body)
    assert 400 in statuses
