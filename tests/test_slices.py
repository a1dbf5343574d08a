"""Recall@10 by owner history and influencer popularity, against a pandas oracle that ranks by a full sort."""

import numpy as np
import pandas as pd
import pytest

from components.retrieval_evaluator import merge_slices
from models.retrieval_metrics import evaluate_rankings, per_owner_rankings
from models.slices import (INFLUENCER_POPULARITY, OWNER_HISTORY, POPULARITY_LABELS, history_labels, popularity_groups,
                           sliced_recall)


def _data(seed=0, n_owners=60, n_items=150):
    rng = np.random.default_rng(seed)
    # Skewed popularity and history sizes from 0 to over 100 known hires, so every bucket has owners.
    weights = 1.0 / np.arange(1, n_items + 1) ** 1.2
    train, heldout = [], []
    for owner in range(n_owners):
        size = [0, 2, 8, 30, 120][owner % 5]
        known = rng.choice(n_items, size=min(size, n_items - 3), replace=False, p=weights / weights.sum())
        rest = np.setdiff1d(np.arange(n_items), known)
        train += [(owner, int(i)) for i in known]
        heldout += [(owner, int(i)) for i in rng.choice(rest, size=3, replace=False)]
    # An item nobody hired in the known rows, held out by a few owners.
    never = n_items - 1
    train = [(o, i) for o, i in train if i != never]
    heldout += [(o, never) for o in range(0, n_owners, 7) if (o, never) not in heldout]
    pairs = lambda rows: (np.array([o for o, _ in rows], np.int64), np.array([i for _, i in rows], np.int64))
    scores = rng.normal(size=(n_owners, n_items))
    return pairs(train), pairs(heldout), scores, n_items


def _oracle(train, heldout, scores, n_items):
    known = pd.DataFrame({"owner": train[0], "item": train[1]}).drop_duplicates()
    held = pd.DataFrame({"owner": heldout[0], "item": heldout[1]}).drop_duplicates()
    held = held.merge(known, how="left", indicator=True).query("_merge == 'left_only'")[["owner", "item"]]
    history = known.groupby("owner").size().reindex(range(len(scores)), fill_value=0)
    labels = history_labels()
    bucket = lambda n: labels[0 if n == 0 else 1 if n < 5 else 2 if n < 20 else 3 if n < 100 else 4]
    counts = known.groupby("item").size().reindex(range(n_items), fill_value=0).sort_values(ascending=False, kind="stable")
    share_middle = (counts.cumsum() - counts / 2) / counts.sum()
    popularity = {i: POPULARITY_LABELS[3] if counts[i] == 0 else POPULARITY_LABELS[min(int(share_middle[i] * 3), 2)] for i in counts.index}
    top = {}
    for owner in held["owner"].unique():
        masked = set(known.loc[known.owner == owner, "item"])
        order = [i for i in np.argsort(-scores[owner], kind="stable") if i not in masked]
        top[owner] = set(order[:10])
    held["hit"] = [item in top[owner] for owner, item in zip(held.owner, held.item)]
    per_owner = held.groupby("owner").agg(hits=("hit", "sum"), n=("hit", "size"))
    per_owner["recall"] = per_owner.hits / np.minimum(10, per_owner.n)
    per_owner["bucket"] = [bucket(history[o]) for o in per_owner.index]
    by_history = {b: {"owners": len(g), "recall@10": g.recall.mean()} for b, g in per_owner.groupby("bucket")}
    held["bucket"] = held.item.map(popularity)
    per_group = held.groupby(["bucket", "owner"]).agg(hits=("hit", "sum"), n=("hit", "size")).reset_index()
    per_group["recall"] = per_group.hits / np.minimum(10, per_group.n)
    by_popularity = {b: {"owners": len(g), "recall@10": g.recall.mean()} for b, g in per_group.groupby("bucket")}
    return {OWNER_HISTORY: by_history, INFLUENCER_POPULARITY: by_popularity}


@pytest.mark.parametrize("seed", [0, 1])
def test_sliced_recall_matches_a_pandas_oracle(seed):
    train, heldout, scores, n_items = _data(seed)
    per_owner = per_owner_rankings(lambda o: scores[o], train, heldout, n_items, item_groups=popularity_groups(train, n_items))
    got, want = sliced_recall(per_owner, train), _oracle(train, heldout, scores, n_items)
    assert set(got[OWNER_HISTORY]) == set(history_labels())  # every bucket present in this data
    assert set(got[INFLUENCER_POPULARITY]) == set(POPULARITY_LABELS)
    for slicing in (OWNER_HISTORY, INFLUENCER_POPULARITY):
        assert set(got[slicing]) == set(want[slicing])
        for bucket, values in want[slicing].items():
            assert got[slicing][bucket]["owners"] == values["owners"], (slicing, bucket)
            assert got[slicing][bucket]["recall@10"] == pytest.approx(values["recall@10"]), (slicing, bucket)


def test_item_groups_leave_the_overall_metrics_and_batching_unchanged():
    train, heldout, scores, n_items = _data(2)
    plain = evaluate_rankings(lambda o: scores[o], train, heldout, n_items)
    groups = popularity_groups(train, n_items)
    whole = per_owner_rankings(lambda o: scores[o], train, heldout, n_items, item_groups=groups)
    batched = per_owner_rankings(lambda o: scores[o], train, heldout, n_items, item_groups=groups, batch_size=7)
    assert evaluate_rankings(lambda o: scores[o], train, heldout, n_items, batch_size=7) == plain
    np.testing.assert_array_equal(whole["recall@10 by item group"], batched["recall@10 by item group"])
    assert sliced_recall(whole, train) == sliced_recall(batched, train)


def test_popularity_thirds_hold_equal_shares_of_the_known_hires():
    items = np.repeat(np.arange(6), [30, 30, 20, 10, 10, 0])  # 100 hires; middles at 0.15, 0.45, 0.7, 0.85, 0.95; one never hired
    groups = popularity_groups((np.arange(len(items)), items), 6)
    assert groups.tolist() == [0, 1, 2, 2, 2, 3]
    repeated = (np.concatenate([np.arange(len(items)), [0] * 50]), np.concatenate([items, [5] * 50]))
    assert popularity_groups(repeated, 6).tolist() == [0, 1, 2, 2, 2, 2]  # one owner hiring item 5 fifty times is one hire


def test_merge_slices_puts_every_model_of_a_bucket_in_one_row():
    a = {OWNER_HISTORY: {"1-4 hires": {"owners": 3, "recall@10": 0.5}}, INFLUENCER_POPULARITY: {}}
    b = {OWNER_HISTORY: {"1-4 hires": {"owners": 3, "recall@10": 0.25}, "5-19 hires": {"owners": 1, "recall@10": 1.0}}}
    assert merge_slices({"model": a, "most_popular": b}) == {
        OWNER_HISTORY: {"1-4 hires": {"owners": 3, "model": 0.5, "most_popular": 0.25}, "5-19 hires": {"owners": 1, "most_popular": 1.0}}}
