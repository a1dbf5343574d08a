"""Shared fixtures: one small generated dataset and one pipeline run per session."""

import glob
import os

import models  # noqa: E402,F401  Sets the Keras-2 switch before TensorFlow is imported anywhere.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from typing import Dict, List

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# CI clones the repo with the team's shared/ folder beside it.
ANIME_ZIP = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data", "anime", "anime.zip")

SMALL = dict(n_influencers=800, n_owners=400, n_interactions=24000, seed=7)
# In-memory Beam: process start-up (about 20 s of imports per worker) would
# dominate a run this small; the multi-processing default is exercised by `make run`.
TEST_BEAM_ARGS = ["--direct_running_mode=in_memory"]


def pytest_collection_modifyitems(items) -> None:
    """Every test that needs the shared pipeline run is end-to-end; the ones running a pipeline of their own say so."""
    for item in items:
        if "pipeline_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> str:
    from data.generate import generate

    out = str(tmp_path_factory.mktemp("small_data"))
    generate(out, **SMALL)
    return out


@pytest.fixture(scope="session")
def pipeline_run(small_data, tmp_path_factory):
    """Runs the local pipeline once on the small sample; returns its config."""
    from pipeline import local_runner

    config = small_config(small_data, str(tmp_path_factory.mktemp("pipeline_output")))
    local_runner.run(config)
    return config


def small_config(data_dir: str, output_dir: str, **model_overrides):
    """The test pipeline: the product's own defaults (the schedule follows the data size)."""
    from models.config import ModelConfig, TransformConfig
    from pipeline.config import PipelineConfig

    return PipelineConfig(
        data_dir=data_dir,
        output_dir=output_dir,
        transform=TransformConfig(max_categories=48),
        model=ModelConfig(**model_overrides),
        beam_pipeline_args=list(TEST_BEAM_ARGS),
    )


def artifact_dir(config, component: str, output: str) -> str:
    """The newest artifact folder a component wrote for `output`."""
    matches = sorted(glob.glob(os.path.join(config.pipeline_root, component, output, "*")), key=lambda p: int(os.path.basename(p)))
    assert matches, f"no {component}.{output} artifact under {config.pipeline_root}"
    return matches[-1]


def read_examples(split_dir: str) -> List[Dict[str, np.ndarray]]:
    """Every tf.Example of a split folder as {feature: values}."""
    import tensorflow as tf

    files = sorted(glob.glob(os.path.join(split_dir, "*.gz")))
    assert files, f"no example files in {split_dir}"
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        example = tf.train.Example.FromString(record)
        row = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            row[name] = np.array(getattr(feature, kind).value)
        rows.append(row)
    return rows
