"""The pushed model: layout, stock ops, every signature, ScaNN vs brute force, the gate."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import artifact_dir, small_config
from models import features
from models.index import INDEX_REPORT, SCANN_SUBDIR
from models.config import ModelConfig


@pytest.fixture(scope="module")
def version_dir(pipeline_run) -> str:
    versions = [d for d in os.listdir(pipeline_run.model_serving_dir) if not d.startswith(".")]
    assert len(versions) == 1 and versions[0].isdigit(), versions
    return os.path.join(pipeline_run.model_serving_dir, versions[0])


@pytest.fixture(scope="module")
def model(version_dir):
    return tf.saved_model.load(version_dir)


@pytest.fixture(scope="module")
def pairs(pipeline_run):
    from components.retrieval_evaluator import read_pairs

    uri = artifact_dir(pipeline_run, "InteractionExampleGen", "examples")
    return read_pairs(uri, features.TRAIN_SPLIT), read_pairs(uri, features.EVAL_SPLIT)


def test_blessed_version_is_pushed_in_tf_serving_layout(pipeline_run, version_dir):
    assert os.path.isfile(os.path.join(version_dir, "saved_model.pb"))
    assert os.path.isdir(os.path.join(version_dir, "variables"))
    assert os.path.isfile(os.path.join(version_dir, SCANN_SUBDIR, "saved_model.pb"))
    assert not [d for d in os.listdir(pipeline_run.model_serving_dir) if d.startswith(".")]  # no staging leftovers
    metrics = json.load(open(glob.glob(os.path.join(artifact_dir(pipeline_run, "RetrievalEvaluator", "evaluation"), "*.json"))[0]))
    assert metrics["blessed"] is True
    assert metrics["model"]["recall@10"] > metrics["most_popular"]["recall@10"]


def test_stock_tensorflow_loads_it_without_scann_or_legacy_keras(version_dir):
    """A fresh process with plain TensorFlow (as TF Serving has): every op is registered."""
    script = (
        "import sys, tensorflow as tf\n"
        "from tensorflow.core.protobuf import saved_model_pb2\n"
        "from tensorflow.python.framework import op_def_registry\n"
        "sm = saved_model_pb2.SavedModel.FromString(open(sys.argv[1] + '/saved_model.pb', 'rb').read())\n"
        "g = sm.meta_graphs[0].graph_def\n"
        "ops = {n.op for n in g.node} | {n.op for f in g.library.function for n in f.node_def}\n"
        "unknown = sorted(o for o in ops if op_def_registry.get(o) is None)\n"
        "assert not unknown, unknown\n"
        "m = tf.saved_model.load(sys.argv[1])\n"
        "print(sorted(m.signatures))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", script, version_dir], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "'recommend'" in out.stdout and "'serving_default'" in out.stdout and "'recommend_cold_start'" in out.stdout


def test_serving_default_predicts_ratings_for_raw_examples(pipeline_run, model):
    uri = artifact_dir(pipeline_run, "InteractionExampleGen", "examples")
    files = glob.glob(os.path.join(uri, "Split-eval", "*.gz"))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").take(2000).as_numpy_iterator())
    predictions = model.signatures["serving_default"](examples=tf.constant(records))["predictions"].numpy()
    transformed = model.signatures["transform_features"](examples=tf.constant(records))
    labels = transformed[features.LABEL_KEY].numpy()
    assert predictions.shape == labels.shape == (len(records),) and len(records) > 1000
    # On rows no part of training saw, the calibrated head is about as close as the train mean rating or closer
    # (the small sample's ratings carry little a head can learn); an uncalibrated or broken head is far off.
    rmse = lambda guess: float(np.sqrt(np.mean((guess - labels) ** 2)))
    assert rmse(predictions) < 1.03 * rmse(float(model.mean_label.numpy()))
    assert np.std(predictions) < np.std(labels)


def test_recommend_excludes_past_hires_and_refuses_unknown_owners(model, pairs):
    (train_owners, train_items), _ = pairs
    owner = int(np.bincount(train_owners).argmax())
    result = model.signatures["recommend"](owner_id=tf.constant([owner], tf.int64))
    ids, scores = result["influencer_id"].numpy(), result["score"].numpy()
    assert ids.shape == (1, 10)
    assert set(ids.ravel()) <= set(model.catalog_ids.numpy().tolist())
    assert not set(ids[0]) & set(train_items[train_owners == owner].tolist())
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    # An owner the model never saw gets an error, not everyone's list (batch scoring dead-letters it the same way).
    with pytest.raises(tf.errors.InvalidArgumentError, match="owner_id 1000000000 has no hires .*recommend_cold_start"):
        model.signatures["recommend"](owner_id=tf.constant([owner, 10**9], tf.int64))
    assert int(model.signatures["query_embedding"](owner_id=tf.constant([10**9], tf.int64))["history_size"].numpy()[0]) == 0


def test_cold_start_and_tower_signatures(model):
    cold = model.signatures["recommend_cold_start"](
        categories=tf.constant(["Action,Drama", ""]), budget=tf.constant([0.5, 0.4])
    )
    assert cold["influencer_id"].shape == (2, 10)
    query = model.signatures["query_embedding"](owner_id=tf.constant([1, 2], tf.int64))["embedding"].numpy()
    towers = ModelConfig().embedding_dim  # the query is the weighted unit tower vector, then the summed item factors
    np.testing.assert_allclose(np.linalg.norm(query[:, :towers], axis=1), model.tower_weight.numpy(), rtol=1e-5)
    assert query.shape[1] == model.catalog_embeddings.shape[1]
    # A new owner has no hires: its query is the unit tower vector alone, whatever share the blend gave the towers.
    embedding = model.signatures["cold_start_embedding"](categories=tf.constant(["Action,Drama"]), budget=tf.constant([0.5]))["embedding"].numpy()
    np.testing.assert_allclose(np.linalg.norm(embedding[:, :towers], axis=1), 1.0, rtol=1e-5)
    assert not embedding[:, towers:].any()
    ids = model.catalog_ids.numpy()[:3]
    rows = [model.catalog_categories.numpy()[i].decode() for i in range(3)]
    followers = model.catalog_followers.numpy()[:3]
    candidate = model.signatures["candidate_embedding"](
        inf_id=tf.constant(ids),
        insta_follower=tf.constant(followers[:, 0]),
        tiktok=tf.constant(followers[:, 1]),
        youtube=tf.constant(followers[:, 2]),
        price_normalized=tf.constant(model.catalog_price.numpy()[:3]),
        categories=tf.constant(rows),
    )["embedding"].numpy()
    np.testing.assert_allclose(candidate, model.catalog_embeddings.numpy()[:3], atol=1e-5)


def test_scann_index_agrees_with_brute_force(version_dir, model, pairs):
    import scann  # noqa: F401

    report = json.load(open(os.path.join(version_dir, "assets.extra", INDEX_REPORT)))
    assert report["recall_at_k"] >= 0.95 and report["catalog_size"] == len(model.catalog_ids.numpy())
    index = tf.saved_model.load(os.path.join(version_dir, SCANN_SUBDIR))
    owners = tf.constant(np.unique(pairs[1][0])[:200], tf.int64)
    exact = model.signatures["recommend"](owner_id=owners)["influencer_id"].numpy()
    approx = index.signatures["recommend"](owner_id=owners)["influencer_id"].numpy()
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    assert overlap >= 0.9, overlap


def filtered_args(owners, k, max_price=-1.0, platform="", min_followers=0, required="", exclude=None) -> dict:
    n = len(owners)
    return dict(
        owner_id=tf.constant(owners, tf.int64),
        k=tf.constant([k] * n, tf.int64),
        max_price=tf.constant([max_price] * n, tf.float32),
        platform=tf.constant([platform] * n),
        min_followers=tf.constant([min_followers] * n, tf.int64),
        required_categories=tf.constant([required] * n),
        exclude_ids=tf.constant(exclude if exclude is not None else [[-1]] * n, tf.int64),
    )


def test_recommend_filtered_equals_the_exact_ranking_of_qualifying_influencers(pipeline_run, model, pairs):
    (train_owners, train_items), _ = pairs
    owners = np.unique(train_owners)[:20].tolist()
    every_hire = _csv_hires(pipeline_run.data_dir)  # the pushed model excludes every hire it was given
    price, followers = model.catalog_price.numpy(), model.catalog_followers.numpy()
    categories = [set(c.decode().split(",")) for c in model.catalog_categories.numpy()]
    ids, embeddings = model.catalog_ids.numpy(), model.catalog_embeddings.numpy()
    max_price, min_tiktok, required = float(np.median(price)), int(np.median(followers[:, 1])), "Action"
    first = int(ids[0])
    result = model.signatures["recommend_filtered"](
        **filtered_args(owners, 15, max_price, "tiktok", min_tiktok, required, exclude=[[first, -1]] * len(owners))
    )
    queries = model.signatures["query_embedding"](owner_id=tf.constant(owners, tf.int64))["embedding"].numpy()
    for row, owner in enumerate(owners):
        hired = every_hire[owner]
        ok = [
            n for n, i in enumerate(ids)
            if price[n] <= max_price and followers[n, 1] >= min_tiktok and required in categories[n] and i != first and i not in hired
        ]
        expected = ids[np.array(ok)[np.argsort(-(embeddings[ok] @ queries[row]), kind="stable")[:15]]]
        assert result["num_qualified"].numpy()[row] == len(ok)
        assert result["num_results"].numpy()[row] == min(15, len(ok))
        got = result["influencer_id"].numpy()[row][: len(expected)]
        assert set(got) == set(expected)  # order may differ only among equal scores
        assert np.all(result["influencer_id"].numpy()[row][len(expected) :] == -1)


def test_filtered_results_say_how_many_qualified_when_fewer_than_k(pipeline_run, model):
    price = model.catalog_price.numpy()
    cap = float(np.sort(price)[2])  # exactly 3 influencers (barring ties) at or under it
    cheap = set(model.catalog_ids.numpy()[price <= cap].tolist())
    owner = next(o for o, hires in sorted(_csv_hires(pipeline_run.data_dir).items()) if not hires & cheap)  # none of them hired yet
    result = model.signatures["recommend_filtered"](**filtered_args([owner], 10, cap))
    qualified = len(cheap)
    assert result["num_qualified"].numpy()[0] == qualified == result["num_results"].numpy()[0]
    assert result["influencer_id"].shape == (1, 10) and np.sum(result["influencer_id"].numpy() >= 0) == qualified
    cold = model.signatures["recommend_cold_start_filtered"](
        categories=tf.constant(["Action"]), budget=tf.constant([0.5]), **{k: v for k, v in filtered_args([0], 4, cap).items() if k != "owner_id"}
    )
    assert cold["num_results"].numpy()[0] == min(4, qualified)


@pytest.mark.parametrize("k, message", [(0, "k must be at least 1"), (10**6, "k must be at most")])
def test_out_of_range_k_is_an_invalid_argument(model, k, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.signatures["recommend_filtered"](**filtered_args([1], k))


def test_scann_filtered_matches_brute_force(version_dir, model, pairs):
    import scann  # noqa: F401

    index = tf.saved_model.load(os.path.join(version_dir, SCANN_SUBDIR))
    owners = np.unique(pairs[1][0])[:100].tolist()
    # A tight filter leaves few of ScaNN's candidates: the exact fallback must keep results at k.
    args = filtered_args(owners, 10, float(np.quantile(model.catalog_price.numpy(), 0.2)), required="Action")
    exact, approx = model.signatures["recommend_filtered"](**args), index.signatures["recommend_filtered"](**args)
    np.testing.assert_array_equal(exact["num_qualified"].numpy(), approx["num_qualified"].numpy())
    np.testing.assert_array_equal(exact["num_results"].numpy(), approx["num_results"].numpy())
    overlap = np.mean([len(set(a) & set(b)) / max(1, np.sum(a >= 0)) for a, b in zip(exact["influencer_id"].numpy(), approx["influencer_id"].numpy())])
    assert overlap >= 0.9, overlap


def test_recommend_command_prints_the_top_k(pipeline_run, pairs, capsys):
    from cli.main import main

    owner = str(int(pairs[0][0][0]))
    assert main(["recommend", "--model", pipeline_run.model_serving_dir, "--owner", owner, "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert f"owner {owner}: top 5" in out and "ScaNN index" in out
    assert len([line for line in out.splitlines() if line.strip()[:1].isdigit()]) == 5
    assert main(["recommend", "--model", pipeline_run.model_serving_dir, "--owner", owner, "-k", "0"]) == 2
    assert "k must be at least 1" in capsys.readouterr().err


def test_gate_blocks_a_model_trained_on_shuffled_pairs(pipeline_run, small_data, tmp_path):
    """Same data and splits (cached), influencers shuffled across training rows: not blessed, not pushed.

    It runs into a copy of the session run's store (TFX's cache key leaves paths out, so the upstream
    components are reused), never into the session run's own folder, which other tests read.
    """
    import shutil

    from pipeline import local_runner

    before = sorted(os.listdir(pipeline_run.model_serving_dir))
    shutil.copy(pipeline_run.metadata_path, tmp_path / "metadata.sqlite")
    config = small_config(small_data, str(tmp_path), shuffle_pairs=True)
    config.enable_cache = True
    local_runner.run(config)
    evaluation = artifact_dir(config, "RetrievalEvaluator", "evaluation")
    metrics = json.load(open(glob.glob(os.path.join(evaluation, "*.json"))[0]))
    assert metrics["blessed"] is False
    assert any("most-popular" in reason for reason in metrics["reasons"])
    # The served model was scored on the same owners, and the weakened one is refused against it too.
    assert metrics["last_blessed"]["recall@10"] > metrics["model"]["recall@10"]
    assert any("below the last blessed model's" in reason for reason in metrics["reasons"])
    assert sorted(os.listdir(pipeline_run.model_serving_dir)) == before and not os.path.exists(config.model_serving_dir)


def test_benchmark_scores_the_run_against_the_baselines(pipeline_run, tmp_path):
    from benchmarks.quality import ITEMS_ROW, MODEL_ROW, TOWERS_ROW, score_pipeline_output

    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\n## Serving\n\nkept\n")
    report = score_pipeline_output(pipeline_run, notebook_epochs=1, markdown_path=str(markdown), progress=lambda m: None, name="sample")
    results = report["results"]
    names = list(results)
    assert [names[0].split(",")[0], names[1].split(",")[0], names[2].split(",")[0]] == [MODEL_ROW, ITEMS_ROW, TOWERS_ROW]
    assert all(any(n.startswith(base) for n in names) for base in ("most-popular", "EASE", "iALS", "notebook model"))
    model, popular = results[names[0]], results["most-popular"]
    assert model["recall@10"] > 1.2 * popular["recall@10"] and model["ndcg@10"] > popular["ndcg@10"]  # what the gate also demands
    for comparison in ("model vs EASE", "model vs item factors alone", "model vs towers alone"):
        for interval in report["paired"][comparison].values():
            assert interval["low"] <= interval["mean"] <= interval["high"]
    cold = list(report["cold_start"])
    assert cold[1] == "most-popular" and cold[2].startswith("category-aware popularity") and cold[3].startswith("category-mix oracle")
    text = markdown.read_text()
    assert "## Recommendation quality on the sample data" in text and "## Serving\n\nkept" in text and "95% interval" in text
    assert (tmp_path / "BENCHMARKS_quality_sample.png").stat().st_size > 0
    assert report["stage_seconds"]["pipeline: Trainer"] > 0


def _cold_start_args(budget, **filters):
    args = {"categories": tf.constant(["Action"] * len(budget)), "budget": tf.constant(budget, tf.float32)}
    return {**args, **{name: value for name, value in filters.items()}}


@pytest.mark.parametrize("budget", [1e20, 3.5e38, -0.1, float("nan"), float("inf"), 1.01])
def test_cold_start_budget_outside_price_range_is_an_invalid_argument(model, budget):
    """1e20 once answered ids 2,4,6,... all scored 0; 3.5e38 answered num_results 0 of a whole catalog qualified."""
    for name in ("recommend_cold_start", "cold_start_embedding"):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"budget must be a number from 0 to 1"):
            model.signatures[name](**_cold_start_args([0.5, budget]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"max_price": 1e20}, "max_price must be a number from 0 to 1"),
        ({"max_price": float("nan")}, "max_price must be a number from 0 to 1"),
        ({"max_price": float("-inf")}, "max_price must be a number from 0 to 1"),
        ({"min_followers": -5}, "min_followers must be a non-negative integer"),
        ({"owner_id": -3}, "owner_id must be a non-negative integer"),
    ],
)
def test_out_of_range_filters_and_ids_are_invalid_arguments(model, change, message):
    args = filtered_args([1], 5)
    for name, value in change.items():
        args[name] = tf.constant([value], args[name].dtype)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        model.signatures["recommend_filtered"](**args)


def test_in_range_inputs_give_consistent_counts(model):
    result = model.signatures["recommend_cold_start"](**_cold_start_args([0.0, 1.0]))
    assert np.all(result["num_results"].numpy() == np.minimum(10, result["num_qualified"].numpy()))
    assert np.all(result["influencer_id"].numpy() >= 0) and np.all(np.isfinite(result["score"].numpy()))
    capped = model.signatures["recommend_filtered"](**filtered_args([1], 5, -1.0))  # negative: no cap
    assert capped["num_results"].numpy()[0] == 5


@pytest.mark.parametrize("width", [1, 3, 33, 1000])
def test_scann_search_rejects_embeddings_of_the_wrong_width(version_dir, model, width):
    """It once read past its input: five identical [0.1] requests gave four different answers."""
    import scann  # noqa: F401

    index = tf.saved_model.load(os.path.join(version_dir, SCANN_SUBDIR))
    dim = int(model.catalog_embeddings.shape[1])
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"embedding must have {dim} values per row"):
        index.signatures["search"](embedding=tf.fill([2, width], 0.1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="embedding must be finite"):
        index.signatures["search"](embedding=tf.fill([1, dim], float("nan")))
    found = index.signatures["search"](embedding=tf.fill([1, dim], 0.1))["influencer_id"].numpy()
    assert found.shape[0] == 1 and np.all(found >= 0)


def _csv_hires(data_dir):
    import pandas as pd

    from data import schema

    history = pd.read_csv(os.path.join(data_dir, schema.HISTORY_FILE))
    return history.groupby(schema.OWNER_ID)[schema.HISTORY_INFLUENCER_ID].apply(set).to_dict()


def test_the_pushed_model_excludes_every_hire_it_was_given(pipeline_run, model):
    """Its tables hold every row of the input, not just the train split: no top-10 slot is a past hire."""
    hires = _csv_hires(pipeline_run.data_dir)
    owners = sorted(hires)
    result = model.signatures["recommend"](owner_id=tf.constant(owners, tf.int64))["influencer_id"].numpy()
    assert not [owner for owner, row in zip(owners, result) if set(row.tolist()) & hires[owner]]


def test_every_row_of_the_input_is_behind_the_served_profiles(pipeline_run, model):
    """history_size counts the owner's rows in all splits: eval-only owners have a profile of their own (test_owner_tables)."""
    import pandas as pd

    from data import schema

    rows = pd.read_csv(os.path.join(pipeline_run.data_dir, schema.HISTORY_FILE)).groupby(schema.OWNER_ID).size()
    sizes = model.signatures["query_embedding"](owner_id=tf.constant(rows.index.values, tf.int64))["history_size"].numpy()
    assert sizes.tolist() == rows.values.tolist()


def _same_ranking(explained, plain):
    for key in ("influencer_id", "score", "num_results", "num_qualified"):
        np.testing.assert_array_equal(explained[key].numpy(), plain[key].numpy(), err_msg=key)


def test_recommend_explained_answers_as_recommend_and_its_parts_are_the_owner_s_hires(pipeline_run, version_dir, model):
    import scann  # noqa: F401

    from models import explain

    hires = _csv_hires(pipeline_run.data_dir)
    owners = sorted(hires)[:40]
    ids = tf.constant(owners, tf.int64)
    index = tf.saved_model.load(os.path.join(version_dir, SCANN_SUBDIR))
    for served in (model, index):  # the stock model and the ScaNN one
        _same_ranking(served.signatures["recommend_explained"](owner_id=ids), served.signatures["recommend"](owner_id=ids))
        args = filtered_args(owners, 7, float(np.quantile(model.catalog_price.numpy(), 0.5)))
        _same_ranking(served.signatures["recommend_explained_filtered"](**args), served.signatures["recommend_filtered"](**args))
    got = model.signatures["recommend_explained"](owner_id=ids)
    query = model.signatures["query_embedding"](owner_id=ids)["embedding"].numpy()
    catalog, width = model.catalog_embeddings.numpy(), int(model.tower_width.numpy())
    position = {int(i): n for n, i in enumerate(model.catalog_ids.numpy())}
    for row, owner in enumerate(owners):
        for j, influencer in enumerate(got["influencer_id"].numpy()[row]):
            if influencer < 0:
                continue
            candidate = catalog[position[int(influencer)]]
            score = float(query[row] @ candidate)
            # The towers' share is their term of the served dot product; the hires shown are the owner's own, largest first.
            assert np.isclose(got[explain.TOWER_SHARE_KEY].numpy()[row, j] * score, query[row, :width] @ candidate[:width], rtol=1e-3, atol=1e-5)
            shown = [h for h in got[explain.HIRE_IDS_KEY].numpy()[row, j].tolist() if h >= 0]
            assert set(shown) <= hires[owner] and (shown or width == catalog.shape[1])  # none only for a towers-only model
            shares = got[explain.HIRE_SHARES_KEY].numpy()[row, j][: len(shown)]
            assert (np.diff(shares) <= 1e-6).all()


def test_transform_features_slice_keys_are_the_buckets_of_the_model_s_own_hires(pipeline_run, model):
    """TFMA slices by these keys: each row's owner by its distinct hires, its influencer by popularity (models/slices.py)."""
    import pandas as pd

    from data import schema
    from models.slices import POPULARITY_LABELS, groups_of_hire_counts, history_labels

    history = pd.read_csv(os.path.join(pipeline_run.data_dir, schema.HISTORY_FILE))[[schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID]].drop_duplicates()
    catalog = model.catalog_ids.numpy()
    known = history[history[schema.HISTORY_INFLUENCER_ID].isin(catalog)]  # the pushed version knows every row: all are its hires
    owner_hires = known.groupby(schema.OWNER_ID).size()
    counts = known.groupby(schema.HISTORY_INFLUENCER_ID).size().reindex(catalog, fill_value=0).to_numpy()
    popularity = dict(zip(catalog.tolist(), (POPULARITY_LABELS[g] for g in groups_of_hire_counts(counts))))
    edges = [0, 1, 5, 20, 100]
    bucket = lambda n: history_labels()[max(i for i, e in enumerate(edges) if n >= e)]

    uri = artifact_dir(pipeline_run, "InteractionExampleGen", "examples")
    records = list(tf.data.TFRecordDataset(glob.glob(os.path.join(uri, "Split-eval", "*.gz")), compression_type="GZIP").take(500).as_numpy_iterator())
    got = model.signatures["transform_features"](examples=tf.constant(records))
    owners, influencers = (got[key].numpy().reshape(-1) for key in (features.OWNER_ID_KEY, features.INFLUENCER_ID_KEY))
    history_keys = [v.decode() for v in got[features.OWNER_HISTORY_BUCKET_KEY].numpy().reshape(-1)]
    popularity_keys = [v.decode() for v in got[features.INFLUENCER_POPULARITY_BUCKET_KEY].numpy().reshape(-1)]
    assert history_keys == [bucket(int(owner_hires.get(o, 0))) for o in owners]
    assert popularity_keys == [popularity[int(i)] for i in influencers]
    assert len(set(history_keys)) > 1 and len(set(popularity_keys)) > 1  # the sample spans several buckets
