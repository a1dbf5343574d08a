"""One LocalDagRunner run (ExampleGen -> ... -> Transform) on a small generated sample."""

import glob
import json
import os

import numpy as np
import pandas as pd
import pytest

from conftest import SMALL, TEST_BEAM_ARGS, artifact_dir, read_examples
from data import schema
from models import features, owner_tables
from models.examples import read_transformed, split_files
from pipeline.config import PipelineConfig

EXAMPLE_GEN = "InteractionExampleGen"


@pytest.fixture(scope="module")
def raw(small_data):
    influencers = pd.read_csv(os.path.join(small_data, schema.INFLUENCER_FILE)).set_index(schema.INFLUENCER_ID)
    history = pd.read_csv(os.path.join(small_data, schema.HISTORY_FILE))
    return influencers, history


@pytest.fixture(scope="module")
def examples(pipeline_run):
    base = artifact_dir(pipeline_run, EXAMPLE_GEN, "examples")
    splits = ("train", "validation", "eval", "catalog", features.RATING_EVAL_SPLIT)
    return {split: read_examples(os.path.join(base, f"Split-{split}")) for split in splits}


@pytest.fixture(scope="module")
def transformed(pipeline_run):
    """Train and eval rows through Transform's graph, as the Trainer and serving see them (no transformed copy is written)."""
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(artifact_dir(pipeline_run, "Transform", "transform_graph"))
    base = artifact_dir(pipeline_run, EXAMPLE_GEN, "examples")
    keys = (features.OWNER_ID_KEY, features.LABEL_KEY, features.INFLUENCER_FEATURES_KEY, features.OWNER_PROFILE_KEY, features.OWNER_HISTORY_COUNT_KEY)
    return {split: read_transformed(split_files(base, split), output, keys) for split in ("train", "eval")}


def test_example_gen_writes_train_validation_eval_and_the_whole_catalog(examples, raw):
    influencers, history = raw
    assert len(examples["catalog"]) == len(influencers)
    assert {int(r[features.INFLUENCER_ID][0]) for r in examples["catalog"]} == set(influencers.index)
    assert len(examples["train"]) + len(examples["validation"]) + len(examples["eval"]) == len(history)
    eval_share = len(examples["eval"]) / len(history)
    validation_share = len(examples["validation"]) / (len(history) - len(examples["eval"]))
    assert 0.17 < eval_share < 0.23 and 0.07 < validation_share < 0.13, (eval_share, validation_share)
    # Below its cap, the rows TFMA scores are every eval row.
    rows = lambda split: sorted(tuple(float(r[name][0]) for name in (features.OWNER_ID, features.INFLUENCER_ID, features.STAR_RATING,
                                                                      features.SENTIMENT)) for r in examples[split])
    assert rows(features.RATING_EVAL_SPLIT) == rows("eval")


def test_interaction_examples_carry_the_hired_influencers_raw_features(examples, raw):
    influencers, _ = raw
    for row in examples["train"][:200]:
        source = influencers.loc[int(row[features.INFLUENCER_ID][0])]
        for name in features.FOLLOWERS:
            assert int(row[name][0]) == source[name]
        assert row[features.PRICE][0] == pytest.approx(source[schema.PRICE], abs=1e-6)
        assert [c.decode() for c in row[features.CATEGORIES]] == source[schema.CATEGORIES].split(",")


def test_split_is_a_deterministic_hash_of_the_row(examples, raw):
    _, history = raw
    keys = lambda rows: {(int(r[features.OWNER_ID][0]), int(r[features.INFLUENCER_ID][0])) for r in rows}
    train, validation, evaluation = keys(examples["train"]), keys(examples["validation"]), keys(examples["eval"])
    assert not train & evaluation and not train & validation and not validation & evaluation
    assert len(train | validation | evaluation) == len(history.drop_duplicates([schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID]))


def test_validation_report_is_recorded(pipeline_run, raw):
    _, history = raw
    report_path = os.path.join(artifact_dir(pipeline_run, EXAMPLE_GEN, "examples"), "validation_report.json")
    with open(report_path) as handle:
        report = json.load(handle)
    assert report["history_rows"] == len(history)


def test_owner_profiles_use_train_rows_only(transformed):
    train = transformed["train"]
    item = train[features.INFLUENCER_FEATURES_KEY].astype(np.float64)
    label = train[features.LABEL_KEY].astype(np.float64)
    weighted = pd.DataFrame(item * label[:, None])
    weighted["owner"] = train[features.OWNER_ID_KEY].astype(np.int64)
    expected = weighted.groupby("owner").mean()
    counts = weighted.groupby("owner").size()
    global_mean = (item * label[:, None]).mean(axis=0)
    for split, rows in transformed.items():
        for row in range(min(500, len(rows[features.OWNER_ID_KEY]))):
            owner = int(rows[features.OWNER_ID_KEY][row])
            if owner in expected.index:
                want, count = expected.loc[owner].to_numpy(), counts.loc[owner]
            else:  # Seen only in eval: no profile from train rows, the documented fallback.
                want, count = global_mean, 0
            np.testing.assert_allclose(rows[features.OWNER_PROFILE_KEY][row], want, atol=1e-5, err_msg=f"{split} owner {owner}")
            assert rows[features.OWNER_HISTORY_COUNT_KEY][row] == count


def test_the_catalog_features_in_chunks_are_those_of_one_pass(pipeline_run):
    """The Trainer feeds the catalog through the transform graph in chunks (memory at a million influencers); the same
    features, to float32 rounding (TF's kernels round differently at different batch sizes: 2e-7 here)."""
    import tensorflow_transform as tft

    from models.examples import read_split
    from models.trainer import catalog_feature_matrix, catalog_features

    output = tft.TFTransformOutput(artifact_dir(pipeline_run, "Transform", "transform_graph"))
    layer, spec = output.transform_features_layer(), output.raw_feature_spec()
    catalog = read_split(split_files(artifact_dir(pipeline_run, EXAMPLE_GEN, "examples"), features.CATALOG_SPLIT),
                         {name: spec[name] for name in features.INFLUENCER_RAW_FEATURES})
    whole = catalog_features(catalog, layer, spec)[features.INFLUENCER_FEATURES_KEY].numpy()
    chunked = catalog_feature_matrix(catalog, layer, spec, chunk=7)
    assert len(whole) > 7 and len(whole) % 7
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


def test_transform_graph_is_saved_with_the_owner_profile_asset(pipeline_run):
    graph = artifact_dir(pipeline_run, "Transform", "transform_graph")
    assets = os.listdir(os.path.join(graph, "transform_fn", "assets"))
    assert owner_tables.PROFILE_FILE in assets
    assert features.CATEGORY_VOCABULARY in assets
    with open(os.path.join(graph, "transform_fn", "assets", owner_tables.PROFILE_FILE)) as handle:
        owners = {int(line.split("\t")[0]) for line in handle}
    assert len(owners) > SMALL["n_owners"] * 0.9


def test_run_stops_on_bad_input_with_a_clear_message(small_data, tmp_path, capsys):
    from cli.main import main
    from runs.summary import EXIT_BAD_INPUT

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in (schema.INFLUENCER_FILE, schema.HISTORY_FILE):
        (bad / name).write_text(open(os.path.join(small_data, name)).read())
    lines = (bad / schema.HISTORY_FILE).read_text().splitlines()
    header = lines[0].split(",")
    fields = lines[3].split(",")
    fields[header.index(schema.STAR_RATING)] = "9"
    lines[3] = ",".join(fields)
    (bad / schema.HISTORY_FILE).write_text("\n".join(lines) + "\n")

    code = main(["run", "--data", str(bad), "--output", str(tmp_path / "out"), "--", *TEST_BEAM_ARGS])
    message = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert schema.HISTORY_FILE in message and "row 3" in message and schema.STAR_RATING in message
    assert not (tmp_path / "out").exists()  # a refused run writes nothing: no metadata store, schema, logs or examples
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    assert main(["run", "--data", str(bad), "--output", str(mine), "--", *TEST_BEAM_ARGS]) == EXIT_BAD_INPUT
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


@pytest.mark.e2e
def test_drop_invalid_ingests_only_the_valid_rows(small_data, tmp_path):
    from tfx import v1 as tfx

    from components.interaction_example_gen import InteractionExampleGen

    bad = tmp_path / "bad"
    bad.mkdir()
    influencers = pd.read_csv(os.path.join(small_data, schema.INFLUENCER_FILE))
    history = pd.read_csv(os.path.join(small_data, schema.HISTORY_FILE)).head(300)
    influencers.loc[0, schema.PRICE] = 1.5  # drops this influencer and its history rows
    history.loc[5, schema.SENTIMENT] = -0.1
    influencers.to_csv(bad / schema.INFLUENCER_FILE, index=False)
    history.to_csv(bad / schema.HISTORY_FILE, index=False)
    dropped_id = int(influencers.loc[0, schema.INFLUENCER_ID])
    expected_rows = int(((history.index != 5) & (history[schema.HISTORY_INFLUENCER_ID] != dropped_id)).sum())

    root = tmp_path / "out"
    defaults = PipelineConfig(data_dir=str(bad), output_dir=str(root))
    example_gen = InteractionExampleGen(data_dir=str(bad), eval_ratio=defaults.eval_ratio, validation_ratio=defaults.validation_ratio, drop_invalid=True)
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name="drop-invalid",
            pipeline_root=str(root / "tfx"),
            components=[example_gen],
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(str(root / "m.sqlite")),
            beam_pipeline_args=TEST_BEAM_ARGS,
        )
    )
    out = glob.glob(str(root / "tfx" / EXAMPLE_GEN / "examples" / "*"))[0]
    rows = [row for split in ("train", "validation", "eval") for row in read_examples(os.path.join(out, f"Split-{split}"))]
    assert len(rows) == expected_rows
    assert len(read_examples(os.path.join(out, "Split-catalog"))) == len(influencers) - 1
    with open(os.path.join(out, "validation_report.json")) as handle:
        dropped = json.load(handle)["dropped"]
    assert sum(dropped.values()) == 1 + 1 + int((history[schema.HISTORY_INFLUENCER_ID] == dropped_id).sum())
    assert pd.read_csv(bad / schema.INFLUENCER_FILE).loc[0, schema.PRICE] == 1.5  # the user's file is untouched


@pytest.mark.e2e
def test_run_defaults_push_a_blessed_model_on_a_small_export(tmp_path):
    """400 influencers, 300 owners, 6,000 rows: once 'not blessed, nothing pushed' with the fixed 8 x 2048 schedule."""
    from data.generate import generate
    from cli.main import main
    from pipeline.config import PipelineConfig

    data = str(tmp_path / "data")
    generate(data, n_influencers=400, n_owners=300, n_interactions=6000, seed=3)
    assert main(["run", "--data", data, "--output", str(tmp_path / "out"), "--", *TEST_BEAM_ARGS]) == 0
    config = PipelineConfig(data_dir=data, output_dir=str(tmp_path / "out"))
    gate = json.load(open(glob.glob(os.path.join(artifact_dir(config, "RetrievalEvaluator", "evaluation"), "*.json"))[0]))
    assert gate["blessed"], gate["reasons"]
    assert gate["model"]["recall@10"] >= 1.2 * gate["most_popular"]["recall@10"]
    assert [v for v in os.listdir(config.model_serving_dir) if v.isdigit()]


@pytest.mark.e2e
def test_example_gen_is_cached_until_either_csv_changes(tmp_path):
    from tfx import v1 as tfx

    from components.interaction_example_gen import InteractionExampleGen
    from data.generate import generate
    from runs.metadata import open_store, pipeline_runs, run_nodes

    data, root = tmp_path / "data", tmp_path / "out"
    generate(str(data), n_influencers=60, n_owners=40, n_interactions=600, seed=1)
    defaults = PipelineConfig(data_dir=str(data), output_dir=str(root))

    def run() -> str:
        example_gen = InteractionExampleGen(data_dir=str(data), eval_ratio=defaults.eval_ratio, validation_ratio=defaults.validation_ratio, drop_invalid=False)
        tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
            pipeline_name="cache", pipeline_root=str(root / "tfx"), components=[example_gen], enable_cache=True,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(str(root / "m.sqlite")),
            beam_pipeline_args=TEST_BEAM_ARGS,
        ))
        with open_store(str(root / "m.sqlite")) as store:
            return run_nodes(store, pipeline_runs(store, "cache")[-1])[EXAMPLE_GEN].state

    def edit(name: str, column: str, value) -> None:
        frame = pd.read_csv(data / name)
        frame.loc[0, column] = value
        frame.to_csv(data / name, index=False)

    assert run() == "complete"
    assert run() == "cached"
    edit(schema.INFLUENCER_FILE, schema.PRICE, 0.123456)
    assert run() == "complete"
    assert run() == "cached"
    edit(schema.HISTORY_FILE, schema.SENTIMENT, 0.654321)
    assert run() == "complete"
