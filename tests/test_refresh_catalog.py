"""`refresh-catalog` on a copy of the shared run's pushed model: a new influencer file served without retraining.

The new file drops 5 influencers, gives one a new price and one a new category, and adds 3 (with the
features of existing ones). The shared run's own folders are never written: every refresh works on a copy.
"""

import csv
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from data import schema
from data.validate import DataValidationError
from models import features, refresh
from models.layout import CATALOG_REFRESH_REPORT, TRAINING_REPORT
from models.owner_tables import SERVED_HISTORY_FILE
from serving import versions
from serving.catalog_refresh import CatalogShrinkError, refresh_catalog

NEW_PRICE = 0.01
NEW_CATEGORY = "Brand New Category"


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _write(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(schema.INFLUENCER_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _all(module, signature, owners, **inputs):
    return {key: value.numpy() for key, value in module.signatures[signature](owner_id=tf.constant(owners, tf.int64), **inputs).items()}


def _filtered_inputs(n, k, max_price=-1.0, required=""):
    return dict(
        k=tf.fill([n], tf.constant(k, tf.int64)), max_price=tf.fill([n], max_price), platform=tf.fill([n], ""),
        min_followers=tf.zeros([n], tf.int64), required_categories=tf.fill([n], required), exclude_ids=tf.fill([n, 1], tf.constant(-1, tf.int64)),
    )


@pytest.fixture(scope="module")
def refreshed(pipeline_run, tmp_path_factory):
    """(base, source version dir, refreshed version dir, the ids that changed) on a copy of the pushed model."""
    work = tmp_path_factory.mktemp("refresh")
    base = str(work / "influencer_recs")
    shutil.copytree(pipeline_run.model_serving_dir, base)
    source = versions.resolve_version_dir(base)
    rows = _rows(os.path.join(pipeline_run.data_dir, schema.INFLUENCER_FILE))
    removed = [int(row["id"]) for row in rows[:5]]
    kept = [dict(row) for row in rows[5:]]
    kept[0][schema.PRICE] = str(NEW_PRICE)
    kept[1][schema.CATEGORIES] = NEW_CATEGORY
    top = max(int(row["id"]) for row in rows)
    added = [top + 1 + n for n in range(3)]
    kept += [dict(rows[10 + n], id=str(i)) for n, i in enumerate(added)]
    path = _write(work / "new.csv", kept)
    summary = refresh_catalog(base, path)
    ids = dict(removed=removed, added=added, priced=int(kept[0]["id"]), categorised=int(kept[1]["id"]), file=path, rows=kept)
    return base, source, summary.version, ids, summary


@pytest.fixture(scope="module")
def models(refreshed):
    _, source, target, _, _ = refreshed
    return tf.saved_model.load(source), tf.saved_model.load(target)


def test_a_refresh_publishes_the_newest_version_and_leaves_the_old_one_as_it_was(refreshed, pipeline_run):
    base, source, target, ids, summary = refreshed
    assert [v.name for v in versions.list_versions(base)] == [os.path.basename(source), os.path.basename(target)]
    assert sorted(os.listdir(base)) == sorted([os.path.basename(source), os.path.basename(target)])  # no staging folder left
    original = os.path.join(pipeline_run.model_serving_dir, os.path.basename(source))
    for name in ("saved_model.pb", os.path.join("assets.extra", SERVED_HISTORY_FILE)):
        with open(os.path.join(original, name), "rb") as before, open(os.path.join(source, name), "rb") as after:
            assert before.read() == after.read()
    assert (summary.unchanged, summary.changed, summary.added, summary.removed) == (len(ids["rows"]) - 2 - 3, 2, 3, 5)
    extra = os.path.join(target, "assets.extra")
    assert {SERVED_HISTORY_FILE, TRAINING_REPORT, CATALOG_REFRESH_REPORT} <= set(os.listdir(extra))
    assert os.path.isfile(os.path.join(target, "scann", "saved_model.pb"))
    with open(os.path.join(extra, CATALOG_REFRESH_REPORT)) as handle:  # where the refresh's time went
        assert set(json.load(handle)["step_seconds"]) == {"read", "load", "compare", "embed", "save", "index"} == set(summary.step_seconds)
    assert sum(summary.step_seconds.values()) <= summary.seconds + 0.05 * len(summary.step_seconds)  # each step rounded to 0.1 s


def test_owners_keep_their_queries_and_their_scores_on_unchanged_influencers(refreshed, models):
    _, _, _, ids, _ = refreshed
    old, new = models
    owners = old.owners.owner_ids.numpy()
    np.testing.assert_array_equal(_all(old, "query_embedding", owners)["embedding"], _all(new, "query_embedding", owners)["embedding"])
    changed = set(ids["removed"]) | set(ids["added"]) | {ids["priced"], ids["categorised"]}
    k = 300
    before = _all(old, "recommend_filtered", owners, **_filtered_inputs(len(owners), k))
    after = _all(new, "recommend_filtered", owners, **_filtered_inputs(len(owners), k))
    for row in range(len(owners)):
        keep = lambda result: [(i, s) for i, s in zip(result["influencer_id"][row], result["score"][row]) if i >= 0 and i not in changed]
        old_row, new_row = keep(before), keep(after)
        n = min(len(old_row), len(new_row))
        assert n > k // 2
        assert [i for i, _ in old_row[:n]] == [i for i, _ in new_row[:n]]
        np.testing.assert_allclose([s for _, s in old_row[:n]], [s for _, s in new_row[:n]], rtol=1e-5, atol=1e-6)


def test_removed_influencers_are_never_recommended_and_new_ones_are(refreshed, models):
    _, _, target, ids, _ = refreshed
    old, new = models
    import scann  # noqa: F401  (the index's ops)

    index = tf.saved_model.load(os.path.join(target, "scann"))
    owners = old.owners.owner_ids.numpy()
    removed = set(ids["removed"])
    for result in (_all(new, "recommend", owners), _all(index, "recommend", owners), _all(new, "recommend_filtered", owners, **_filtered_inputs(len(owners), 300))):
        assert not removed & set(result["influencer_id"].ravel().tolist())
    wide = _all(new, "recommend_filtered", owners, **_filtered_inputs(len(owners), 300))
    assert set(ids["added"]) <= set(wide["influencer_id"].ravel().tolist())
    cold = new.signatures["recommend_cold_start"](categories=tf.constant(["Action"]), budget=tf.constant([0.5]))["influencer_id"].numpy()
    assert not removed & set(cold.ravel().tolist())


def test_new_features_take_effect_in_the_filters_and_the_tower(refreshed, models):
    _, _, _, ids, _ = refreshed
    old, new = models
    owners = old.owners.owner_ids.numpy()[:20]
    cheap = _all(new, "recommend_filtered", owners, **_filtered_inputs(len(owners), 50, max_price=NEW_PRICE))
    prices = dict(zip(new.catalog_ids.numpy().tolist(), new.catalog_price.numpy().tolist()))
    assert all(prices[i] <= NEW_PRICE for i in cheap["influencer_id"].ravel() if i >= 0)
    assert any(ids["priced"] in row for row in cheap["influencer_id"].tolist())  # it qualifies now
    tagged = _all(new, "recommend_filtered", owners[:1], **_filtered_inputs(1, 5, required=NEW_CATEGORY))
    assert tagged["num_qualified"].tolist() == [1] and tagged["influencer_id"][0, 0] == ids["categorised"]
    width = int(new.tower_width.numpy())
    position = {int(i): n for n, i in enumerate(new.catalog_ids.numpy())}
    old_position = {int(i): n for n, i in enumerate(old.catalog_ids.numpy())}
    for influencer in (ids["priced"], ids["categorised"]):
        row = next(r for r in ids["rows"] if int(r["id"]) == influencer)
        expected = refresh.tower_embeddings(old, refresh.catalog_of(_parsed([row])), np.array([0]))[0]
        got = new.catalog_embeddings.numpy()[position[influencer]]
        np.testing.assert_allclose(got[:width], expected, rtol=1e-5, atol=1e-6)  # the tower of the new features
        served = old.catalog_embeddings.numpy()[old_position[influencer]]
        assert not np.allclose(got[:width], served[:width])
        np.testing.assert_array_equal(got[width:], served[width:])  # its own item factors


def _parsed(rows):
    from data.records import parse_influencer

    return [parse_influencer(row) for row in rows]


def test_a_new_influencer_gets_the_tower_of_its_features_and_its_neighbours_item_factors(refreshed, models):
    _, _, _, ids, _ = refreshed
    old, new = models
    width = int(new.tower_width.numpy())
    served = old.catalog_embeddings.numpy()
    position = {int(i): n for n, i in enumerate(new.catalog_ids.numpy())}
    rows = [next(r for r in ids["rows"] if int(r["id"]) == i) for i in ids["added"]]
    towers = refresh.tower_embeddings(old, refresh.catalog_of(_parsed(rows)), np.arange(len(rows)))
    got = new.catalog_embeddings.numpy()[[position[i] for i in ids["added"]]]
    np.testing.assert_allclose(got[:, :width], towers, rtol=1e-5, atol=1e-6)
    if served.shape[1] > width:
        expected = refresh.neighbour_factors(towers, served[:, :width], served[:, width:])
        np.testing.assert_allclose(got[:, width:], expected, rtol=1e-5, atol=1e-6)
        assert np.abs(got[:, width:]).sum() > 0


def test_the_same_file_again_answers_exactly_as_before_also_from_a_refreshed_version(refreshed, models):
    base, _, target, ids, _ = refreshed
    _, new = models
    again = refresh_catalog(target, ids["file"])
    assert (again.unchanged, again.changed, again.added, again.removed) == (len(ids["rows"]), 0, 0, 0)
    twice = tf.saved_model.load(again.version)
    owners = new.owners.owner_ids.numpy()
    first, second = _all(new, "recommend", owners), _all(twice, "recommend", owners)
    np.testing.assert_array_equal(first["influencer_id"], second["influencer_id"])
    np.testing.assert_allclose(first["score"], second["score"], rtol=1e-6)
    np.testing.assert_array_equal(new.catalog_embeddings.numpy(), twice.catalog_embeddings.numpy())
    assert versions.list_versions(base)[-1].name == os.path.basename(again.version)


def test_the_rest_stand_in_serves_the_refreshed_version(refreshed, models):
    from test_rest_api import MODEL_NAME, make_standin, predict, request

    base = refreshed[0]
    _, new = models
    newest = versions.list_versions(base)[-1]
    server = make_standin(base, poll_seconds=0)
    try:
        status, body = request(server.port, "GET", f"/v1/models/{MODEL_NAME}")
        assert status == 200 and body["model_version_status"][0]["version"] == str(newest.number)
        owners = new.owners.owner_ids.numpy()[:3].tolist()
        status, body = predict(server.port, {"signature_name": "recommend_explained", "instances": [{"owner_id": o} for o in owners]})
        assert status == 200, body
        expected = _all(tf.saved_model.load(os.path.join(base, newest.name)), "recommend_explained", owners)
        assert [p["influencer_id"] for p in body["predictions"]] == expected["influencer_id"].tolist()
    finally:
        server.close()


def test_a_file_dropping_too_much_of_the_catalog_or_with_bad_rows_publishes_nothing(refreshed, tmp_path, capsys):
    from cli.main import main
    from runs.summary import EXIT_BAD_INPUT

    base, _, _, ids, _ = refreshed
    before = sorted(os.listdir(base))
    shrunk = _write(tmp_path / "shrunk.csv", ids["rows"][: len(ids["rows"]) // 2])
    with pytest.raises(CatalogShrinkError, match="--allow-shrink"):
        refresh_catalog(base, shrunk)
    bad = [dict(row) for row in ids["rows"]]
    bad[3][schema.PRICE] = "1.5"
    bad_path = _write(tmp_path / "bad.csv", bad)
    with pytest.raises(DataValidationError, match=r"row 4 \(line 5\), field price_normalized"):
        refresh_catalog(base, bad_path)
    assert main(["refresh-catalog", "--model", base, "--influencers", bad_path]) == EXIT_BAD_INPUT
    assert "price_normalized" in capsys.readouterr().err
    assert sorted(os.listdir(base)) == before
