"""Synthetic seed data: layout, determinism, notebook-like statistics, learnable structure."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import data.generate as gen
from data import schema
from data.generate import CATEGORIES, generate

DEFAULT = dict(n_influencers=6406, n_owners=5000, n_interactions=413_446)
SMALL = dict(n_influencers=400, n_owners=150, n_interactions=6000)


def _read(out_dir):
    return (pd.read_csv(os.path.join(out_dir, schema.INFLUENCER_FILE)),
            pd.read_csv(os.path.join(out_dir, schema.HISTORY_FILE)))


def _bytes(out_dir):
    return [Path(out_dir, f).read_bytes() for f in (schema.INFLUENCER_FILE, schema.HISTORY_FILE)]


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("default"))
    counts = generate(out, seed=0, **DEFAULT)
    influencers, history = _read(out)
    return out, counts, influencers, history


def test_header_columns_and_counts(default_set):
    out, counts, influencers, history = default_set
    with open(os.path.join(out, schema.INFLUENCER_FILE)) as f:
        assert f.readline().rstrip("\n") == ",".join(schema.INFLUENCER_COLUMNS)
    with open(os.path.join(out, schema.HISTORY_FILE)) as f:
        assert f.readline().rstrip("\n") == ",".join(schema.HISTORY_COLUMNS)
    assert tuple(influencers.columns) == schema.INFLUENCER_COLUMNS
    assert tuple(history.columns) == schema.HISTORY_COLUMNS
    assert counts == {"influencers": len(influencers), "owners": DEFAULT["n_owners"], "interactions": len(history)}
    assert not influencers.isna().any().any() and not history.isna().any().any()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_deterministic_for_a_seed(tmp_path):
    a, b, c = (str(tmp_path / name) for name in "abc")
    generate(a, seed=7, **SMALL)
    generate(b, seed=7, **SMALL)
    generate(c, seed=8, **SMALL)
    assert _bytes(a) == _bytes(b)
    assert _bytes(a)[0] != _bytes(c)[0] and _bytes(a)[1] != _bytes(c)[1]


def test_influencer_statistics(default_set):
    _, _, inf, _ = default_set
    assert sorted(inf[schema.INFLUENCER_ID]) == list(range(1, DEFAULT["n_influencers"] + 1))
    followers = inf[list(schema.FOLLOWER_COLUMNS)]
    assert all(pd.api.types.is_integer_dtype(t) for t in followers.dtypes) and (followers >= 0).all().all()
    insta = inf[schema.INSTA_FOLLOWERS]
    assert 4_000 < insta.median() < 12_000 and 20_000 < insta.mean() < 50_000  # notebook: 7.3k, 33k
    assert insta.min() < 500 and insta.max() > 300_000
    assert np.corrcoef(np.log1p(followers.to_numpy().T)).min() > 0.9
    price = inf[schema.PRICE]
    assert price.between(*schema.UNIT_INTERVAL).all()
    assert abs(price.mean() - 0.5) < 0.02 and 0.05 < price.std() < 0.09


def test_categories(default_set):
    _, _, inf, _ = default_set
    assert len(CATEGORIES) == 40 == len(set(CATEGORIES))
    labels = inf[schema.CATEGORIES].str.split(schema.CATEGORY_SEPARATOR)
    assert labels.map(len).between(1, 6).all()
    assert labels.map(lambda ls: len(set(ls)) == len(ls)).all()
    used = {label for ls in labels for label in ls}
    assert used == set(CATEGORIES)


def test_history_statistics_and_integrity(default_set):
    _, _, inf, hist = default_set
    assert abs(len(hist) - DEFAULT["n_interactions"]) < 0.03 * DEFAULT["n_interactions"]
    assert not hist.duplicated([schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID]).any()
    assert hist[schema.HISTORY_INFLUENCER_ID].isin(inf[schema.INFLUENCER_ID]).all()
    per_owner = hist.groupby(schema.OWNER_ID).size()
    assert sorted(per_owner.index) == list(range(1, DEFAULT["n_owners"] + 1))
    assert per_owner.max() > 10 * per_owner.median()  # heavy-tailed like the real data
    per_inf = hist.groupby(schema.HISTORY_INFLUENCER_ID).size().sort_values(ascending=False)
    assert per_inf.iloc[: len(inf) // 10].sum() > 0.3 * len(hist)  # popularity-skewed
    stars, sentiment = hist[schema.STAR_RATING], hist[schema.SENTIMENT]
    assert stars.between(schema.STAR_MIN, schema.STAR_MAX).all() and pd.api.types.is_integer_dtype(stars)
    assert 3.95 < stars.mean() < 4.3  # notebook: 4.14
    assert sentiment.between(*schema.UNIT_INTERVAL).all() and 0.74 < sentiment.mean() < 0.82  # notebook: 0.78
    assert stars.corr(sentiment) > 0.5


def test_planted_structure_beats_most_popular(default_set):
    """Hold out one row per owner; a category-profile scorer must clearly beat most-popular."""
    _, _, inf, hist = default_set
    rng = np.random.default_rng(0)
    shuffled = hist.sample(frac=1.0, random_state=1)
    test = shuffled.drop_duplicates(schema.OWNER_ID)
    train = hist.drop(test.index)
    owners = rng.choice(test[schema.OWNER_ID].to_numpy(), 1500, replace=False)
    test = test.set_index(schema.OWNER_ID).loc[owners]

    hot = inf.set_index(schema.INFLUENCER_ID)[schema.CATEGORIES].str.get_dummies(sep=schema.CATEGORY_SEPARATOR)
    hot = hot.reindex(np.arange(1, len(inf) + 1)).to_numpy(float)  # row i-1 = influencer i
    pop = np.bincount(train[schema.HISTORY_INFLUENCER_ID] - 1, minlength=len(inf)).astype(float)
    profile = (pd.DataFrame(hot[train[schema.HISTORY_INFLUENCER_ID] - 1], index=train[schema.OWNER_ID])
               .groupby(level=0).mean().reindex(owners).fillna(0.0).to_numpy())
    # P(hire i) ~ pop_i * sum over i's categories of the owner's share / category size
    affinity = (pop + 1) * ((profile / np.maximum(hot.T @ pop, 1)) @ hot.T)

    seen = np.zeros((len(owners), len(inf)), dtype=bool)
    rows = pd.Series(np.arange(len(owners)), index=owners)
    train_rows = train[train[schema.OWNER_ID].isin(owners)]
    seen[rows[train_rows[schema.OWNER_ID]].to_numpy(), train_rows[schema.HISTORY_INFLUENCER_ID].to_numpy() - 1] = True
    target = test[schema.HISTORY_INFLUENCER_ID].to_numpy() - 1

    def hit_rate(scores, k=10):
        scores = np.where(seen, -np.inf, scores)
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        return (top == target[:, None]).any(axis=1).mean()

    popular = hit_rate(np.broadcast_to(pop + 1e-9 * np.arange(len(inf)), seen.shape))
    personal = hit_rate(affinity)
    assert popular > 0.03  # popularity matters (random would be ~0.002)
    assert personal > 1.5 * popular, (personal, popular)


def test_ratings_follow_category_match_and_budget_fit(default_set):
    """Stars rise with the match to the owner's other hires and fall with the price gap."""
    _, _, inf, hist = default_set
    hot = inf.set_index(schema.INFLUENCER_ID)[schema.CATEGORIES].str.get_dummies(sep=schema.CATEGORY_SEPARATOR)
    rows = hot.reindex(np.arange(1, len(inf) + 1)).to_numpy(float)[hist[schema.HISTORY_INFLUENCER_ID] - 1]
    owner = hist[schema.OWNER_ID]
    total = pd.DataFrame(rows, index=owner).groupby(level=0).sum().loc[owner].to_numpy()
    count = owner.map(owner.value_counts()).to_numpy()[:, None]
    others = (total - rows) / np.maximum(count - 1, 1)  # leave-one-out category profile
    match = (others * rows).sum(axis=1) / rows.sum(axis=1)
    price = inf.set_index(schema.INFLUENCER_ID)[schema.PRICE].loc[hist[schema.HISTORY_INFLUENCER_ID]].to_numpy()
    gap = np.abs(price - pd.Series(price).groupby(owner.to_numpy()).transform("mean").to_numpy())
    stars = hist[schema.STAR_RATING].to_numpy()
    assert np.corrcoef(match, stars)[0, 1] > 0.1
    assert np.corrcoef(gap, stars)[0, 1] < -0.05


def test_many_chunks_stay_consistent(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "_ROWS_PER_CHUNK", 1000)
    messages = []
    counts = generate(str(tmp_path), seed=3, progress=messages.append, **SMALL)
    inf, hist = _read(str(tmp_path))
    assert sum(m.startswith("history: chunk") for m in messages) >= 5
    assert counts["interactions"] == len(hist) and abs(len(hist) - SMALL["n_interactions"]) < 0.03 * SMALL["n_interactions"]
    assert not hist.duplicated([schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID]).any()
    assert sorted(hist[schema.OWNER_ID].unique()) == list(range(1, SMALL["n_owners"] + 1))
    assert hist[schema.HISTORY_INFLUENCER_ID].isin(inf[schema.INFLUENCER_ID]).all()
    pairs = hist[[schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID]]
    assert pairs.equals(pairs.sort_values(list(pairs.columns)).reset_index(drop=True))  # owner, then influencer


def test_rejects_impossible_sizes(tmp_path):
    with pytest.raises(ValueError, match="n_owners"):
        generate(str(tmp_path), n_influencers=10, n_owners=50, n_interactions=20)
    with pytest.raises(ValueError, match="too large"):
        generate(str(tmp_path), n_influencers=10, n_owners=5, n_interactions=1000)
    assert os.listdir(tmp_path) == []
