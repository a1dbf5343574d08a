"""Compiling for Kubeflow Pipelines / Vertex AI: no cluster, no pipeline run.

The compiled PipelineJob JSON must hold every component of the local
pipeline, run them in the user's image, hand the user's Beam args to the
Beam-based steps, and carry nothing that only exists on this machine.
"""

import json
import os
import uuid

import pandas as pd
import pytest


from data import schema  # noqa: E402
from cli.main import main  # noqa: E402
from pipeline.config import PipelineConfig  # noqa: E402

IMAGE = "europe-docker.pkg.dev/p/repo/influencer-recs:test"
DATAFLOW_ARGS = [
    "--runner=DataflowRunner",
    "--project=p",
    "--region=europe-west1",
    "--temp_location=gs://b/tmp",
    f"--sdk_container_image={IMAGE}",
]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(**overrides) -> PipelineConfig:
    return PipelineConfig(data_dir="gs://b/data", output_dir="gs://b/root", **overrides)


def _compile(config: PipelineConfig, path) -> dict:
    from pipeline.kubeflow_v2_runner import compile_pipeline

    assert compile_pipeline(config, IMAGE, str(path)) == str(path)
    with open(path) as handle:
        return json.load(handle)


def _containers(job: dict) -> dict:
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    return {label.rsplit("_executor", 1)[0]: spec["container"] for label, spec in executors.items() if "container" in spec}


@pytest.fixture(scope="module")
def dataflow_job(tmp_path_factory):
    return _compile(_config(beam_pipeline_args=DATAFLOW_ARGS), tmp_path_factory.mktemp("kfp") / "pipeline.json")


def test_spec_names_every_component_of_the_pipeline(dataflow_job):
    from pipeline.pipeline import create_pipeline

    component_ids = {c.id for c in create_pipeline(_config(beam_pipeline_args=DATAFLOW_ARGS), drift_check=False).components}
    tasks = set(dataflow_job["pipelineSpec"]["root"]["dag"]["tasks"])
    # A Resolver compiles to resolver tasks named after it; every other component is one task.
    for component_id in component_ids:
        assert component_id in tasks or any(t.startswith(component_id + "-") for t in tasks), component_id
    assert {"InteractionExampleGen", "Transform", "Trainer", "Evaluator", "RetrievalEvaluator", "Pusher"} <= tasks
    assert dataflow_job["runtimeConfig"]["gcsOutputDirectory"] == "gs://b/root/tfx"


def test_every_step_runs_in_the_given_image(dataflow_job):
    containers = _containers(dataflow_job)
    assert len(containers) >= 10
    assert {c["image"] for c in containers.values()} == {IMAGE}
    # Custom executors are referenced by module path, importable from the installed package.
    assert containers["Transform"]["args"][1] == "components.transform.Executor"
    assert containers["Pusher"]["args"][1] == "components.pusher.Executor"


def test_beam_args_reach_the_beam_steps(dataflow_job):
    containers = _containers(dataflow_job)
    for step in ("InteractionExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        args = containers[step]["args"]
        assert args[-len(DATAFLOW_ARGS):] == DATAFLOW_ARGS, step
    # ExampleGen's driver (input fingerprinting) gets them too.
    assert containers["InteractionExampleGen"]["lifecycle"]["preCacheCheck"]["args"][-len(DATAFLOW_ARGS):] == DATAFLOW_ARGS


def test_nothing_from_this_machine_in_the_spec(dataflow_job):
    text = json.dumps(dataflow_job)
    assert "sqlite" not in text.lower()
    assert REPO_ROOT not in text
    from pipeline.kubeflow_v2_runner import CONTAINER_SCHEMA_FILE

    assert CONTAINER_SCHEMA_FILE in text
    assert "gs://b/data" in text and "gs://b/root/serving/influencer_recs" in text


def test_local_beam_default_becomes_the_containers_own(tmp_path):
    from pipeline.kubeflow_v2_runner import CONTAINER_BEAM_ARGS

    job = _compile(_config(), tmp_path / "pipeline.json")
    args = _containers(job)["Transform"]["args"]
    assert args[-len(CONTAINER_BEAM_ARGS):] == CONTAINER_BEAM_ARGS
    assert f"--direct_num_workers={os.cpu_count()}" not in args


def test_local_paths_are_refused(tmp_path):
    from pipeline.kubeflow_v2_runner import compile_pipeline

    with pytest.raises(ValueError, match="data dir must be a bucket path"):
        compile_pipeline(PipelineConfig(data_dir="var/sample", output_dir="gs://b/root"), IMAGE, str(tmp_path / "p.json"))
    assert not (tmp_path / "p.json").exists()


def test_cli_compiles_with_beam_args_after_dashes(tmp_path, capsys):
    out = tmp_path / "job.json"
    argv = ["compile-kubeflow", "--data", "gs://b/data", "--output", "gs://b/root", "--image", IMAGE, "--out", str(out)]
    assert main([*argv, "--epochs", "2", "--", *DATAFLOW_ARGS]) == 0
    assert str(out) in capsys.readouterr().out
    job = json.loads(out.read_text())
    assert _containers(job)["StatisticsGen"]["args"][-len(DATAFLOW_ARGS):] == DATAFLOW_ARGS

    argv[argv.index("gs://b/root")] = "relative/out"
    assert main(argv) == 2
    assert "output dir must be a bucket path" in capsys.readouterr().err


@pytest.fixture
def bucket(tmp_path):
    """A folder on TensorFlow's in-memory filesystem (ram://), standing in for gs://."""
    import tensorflow as tf

    from data.generate import generate

    generate(str(tmp_path), n_influencers=40, n_owners=20, n_interactions=200, seed=1)
    root = f"ram://bucket-{uuid.uuid4().hex}"
    for name in (schema.INFLUENCER_FILE, schema.HISTORY_FILE):
        tf.io.gfile.makedirs(f"{root}/data")
        tf.io.gfile.copy(str(tmp_path / name), f"{root}/data/{name}")
    return root, tmp_path


def test_bucket_input_is_validated_and_read_in_place(bucket):
    from components.interaction_example_gen import validate_input

    root, _ = bucket
    report = validate_input(f"{root}/data", drop_invalid=False, tmp_dir=f"{root}/tmp")
    assert report.influencer_rows == 40 and report.history_rows == 200
    assert report.history_path == f"{root}/data/{schema.HISTORY_FILE}"  # Beam reads the bucket


def test_bucket_input_errors_name_the_bucket_file(bucket):
    import tensorflow as tf

    from components.interaction_example_gen import validate_input
    from data.validate import DataValidationError

    root, local = bucket
    history = pd.read_csv(local / schema.HISTORY_FILE)
    history.loc[2, schema.STAR_RATING] = 9
    tf.io.gfile.remove(f"{root}/data/{schema.HISTORY_FILE}")  # ram:// does not truncate on rewrite
    with tf.io.gfile.GFile(f"{root}/data/{schema.HISTORY_FILE}", "w") as handle:
        handle.write(history.to_csv(index=False))
    with pytest.raises(DataValidationError) as error:
        validate_input(f"{root}/data", drop_invalid=False, tmp_dir=f"{root}/tmp")
    assert f"{root}/data/{schema.HISTORY_FILE} row 3" in str(error.value)
    assert schema.STAR_RATING in str(error.value)

    report = validate_input(f"{root}/data", drop_invalid=True, tmp_dir=f"{root}/tmp")
    assert report.history_rows == 199
    assert report.examples and all(p.path.startswith(f"{root}/data/") for p in report.examples)
    assert report.history_path == f"{root}/tmp/cleaned/{schema.HISTORY_FILE}"  # uploaded, so workers can read it
    with tf.io.gfile.GFile(report.history_path) as handle:
        assert len(handle.read().strip().splitlines()) == 1 + 199
