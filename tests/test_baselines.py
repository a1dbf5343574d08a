"""Most-popular and EASE baselines: exact values on tiny inputs, and they rank sensibly."""

import numpy as np
import pytest

from models import baselines
from models.baselines import EASE, fit_ease, interaction_matrix, most_popular_scores, tune_ease
from models.retrieval_metrics import evaluate_rankings, random_split


def _block_data(seed=0, n_groups=4, owners_per_group=40, items_per_group=25, p_in=0.4, p_out=0.02):
    """Owners in groups that prefer their item group; a popular head so most-popular is not trivial."""
    rng = np.random.default_rng(seed)
    n_owners, n_items = n_groups * owners_per_group, n_groups * items_per_group
    owner_group = np.arange(n_owners) // owners_per_group
    item_group = np.arange(n_items) // items_per_group
    prob = np.where(owner_group[:, None] == item_group[None, :], p_in, p_out)
    prob[:, :5] = 0.5  # globally popular items
    owners, items = np.nonzero(rng.random((n_owners, n_items)) < prob)
    return owners, items, n_owners, n_items


def _split(owners, items, seed=0):
    held = random_split(len(owners), 0.2, seed)
    return (owners[~held], items[~held]), (owners[held], items[held])


def test_most_popular_counts_train_rows_for_every_owner():
    scores_fn = most_popular_scores((np.array([0, 1, 1, 2]), np.array([2, 2, 0, 2])), n_items=4)
    np.testing.assert_array_equal(scores_fn(np.array([0, 5])), [[1, 0, 3, 0], [1, 0, 3, 0]])
    with pytest.raises(ValueError, match="out of range"):
        most_popular_scores((np.array([0]), np.array([4])), n_items=4)


def test_most_popular_metrics_by_hand():
    train = (np.array([0, 1, 1, 2]), np.array([2, 2, 0, 2]))
    heldout = (np.array([0, 2]), np.array([0, 3]))
    got = evaluate_rankings(most_popular_scores(train, 4), train, heldout, n_items=4, ks=(1,))
    # Ranking 2, 0, 1, 3. Owner 0 (train {2}): 0 first -> hit. Owner 2 (train {2}): 0 first, wants 3 -> miss.
    # Everyone's top 1 is influencer 0: a quarter of the catalog.
    assert got == {"recall@1": 0.5, "ndcg@1": 0.5, "coverage@1": 0.25, "owners": 2}


def test_interaction_matrix_is_binary():
    matrix = interaction_matrix((np.array([0, 0, 1]), np.array([1, 1, 2])), n_owners=3, n_items=4)
    np.testing.assert_array_equal(matrix.toarray(), [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])


def test_ease_matches_a_direct_numpy_implementation():
    rng = np.random.default_rng(2)
    dense = (rng.random((120, 30)) < 0.15).astype(np.float64)
    owners, items = np.nonzero(dense)
    lam = 7.5
    model = fit_ease((owners, items), 120, 30, lam)
    p = np.linalg.inv(dense.T @ dense + lam * np.eye(30))
    expected = np.eye(30) - p @ np.diag(1.0 / np.diag(p))
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.weights, expected, atol=2e-5)  # float32, as the baseline runs
    np.testing.assert_allclose(model(np.array([3, 0, 119])), dense[[3, 0, 119]] @ expected, atol=2e-5)
    assert isinstance(model, EASE) and model.lam == lam and model.weights.dtype == np.float32
    # In float64 it is exact, whatever the block the other triangle is mirrored in.
    np.testing.assert_allclose(baselines.ease_weights(dense.T @ dense, lam), expected, atol=1e-12)
    mirrored = np.triu(np.arange(49.0).reshape(7, 7))
    baselines._mirror_triangle(mirrored, upper=True, block=3)
    np.testing.assert_array_equal(mirrored, mirrored.T)
    lower = np.tril(np.arange(49.0).reshape(7, 7))
    baselines._mirror_triangle(lower, upper=False, block=2)
    np.testing.assert_array_equal(lower, np.tril(np.arange(49.0).reshape(7, 7)) + np.tril(np.arange(49.0).reshape(7, 7), -1).T)


def test_ease_refuses_big_catalogs_and_bad_lambda():
    with pytest.raises(ValueError, match="max_items"):
        fit_ease((np.array([0]), np.array([0])), 1, 50_000, 100.0)
    with pytest.raises(ValueError, match="max_items"):
        fit_ease((np.array([0]), np.array([0])), 1, 11, 100.0, max_items=10)
    with pytest.raises(ValueError, match="lambda"):
        fit_ease((np.array([0]), np.array([0])), 1, 3, 0.0)


def test_ease_beats_most_popular_on_block_structure():
    owners, items, n_owners, n_items = _block_data()
    train, heldout = _split(owners, items)
    popular = evaluate_rankings(most_popular_scores(train, n_items), train, heldout, n_items)
    ease = evaluate_rankings(fit_ease(train, n_owners, n_items, 50.0), train, heldout, n_items)
    assert popular["owners"] == ease["owners"] > 0.9 * n_owners
    assert ease["ndcg@10"] > popular["ndcg@10"] + 0.08
    assert ease["recall@20"] > popular["recall@20"] + 0.3


def test_tune_ease_picks_from_the_grid_deterministically():
    owners, items, n_owners, n_items = _block_data(seed=1)
    train, _ = _split(owners, items)
    grid = (1.0, 30.0, 1000.0, 1e5)
    first = tune_ease(train, n_owners, n_items, lambdas=grid, seed=3)
    again = tune_ease(train, n_owners, n_items, lambdas=grid, seed=3)
    assert first.lam in grid and first.lam == again.lam
    assert list(first.validation) == list(grid) and first.validation == again.validation
    assert first.lam == max(grid, key=lambda lam: first.validation[lam]["ndcg@10"])
    # Refit on all train rows with the chosen lambda.
    assert first.model.lam == first.lam
    assert first.model.interactions.nnz == len(set(zip(*train)))
    np.testing.assert_allclose(first.model.weights, fit_ease(train, n_owners, n_items, first.lam).weights)
    with pytest.raises(ValueError, match="unknown metric"):
        tune_ease(train, n_owners, n_items, lambdas=(10.0,), metric="mrr")


def test_tuned_ials_beats_most_popular_on_clustered_owners():
    from models.baselines import tune_ials

    rng = np.random.default_rng(0)
    owners, items = [], []
    for owner in range(200):
        group = owner % 4
        for item in rng.choice(10, size=5, replace=False):
            owners.append(owner)
            items.append(group * 10 + item)
    pairs = (np.array(owners), np.array(items))
    test = random_split(len(owners), 0.2, 0)
    train, heldout = (pairs[0][~test], pairs[1][~test]), (pairs[0][test], pairs[1][test])
    grid = ({"factors": 8, "regularization": 0.1, "alpha": 10.0}, {"factors": 2, "regularization": 100.0, "alpha": 1.0})
    tuned = tune_ials(train, 200, 40, grid=grid)
    assert tuned.params == grid[0] and set(tuned.validation) == {str(g) for g in grid}
    ials = evaluate_rankings(tuned.model, train, heldout, 40)
    popular = evaluate_rankings(most_popular_scores(train, 40), train, heldout, 40)
    assert ials["recall@10"] > 1.5 * popular["recall@10"]


def test_sansa_at_full_density_ranks_like_ease_and_beats_most_popular():
    pytest.importorskip("sansa", reason="the scale extra (pip install -e .[scale]) is not installed")
    owners, items, n_owners, n_items = _block_data(seed=3)
    train, heldout = _split(owners, items)
    # With every weight kept the sparse approximate inverse is close to EASE's (the incomplete factorization scales
    # the columns first, so a lambda is not quite EASE's): most of each owner's top 10 is EASE's (at random: 1 in 10).
    sansa = baselines.fit_sansa(train, n_owners, n_items, lam=10.0, weights_per_item=n_items)
    ease = fit_ease(train, n_owners, n_items, lam=10.0)
    probe = np.arange(n_owners)
    known = interaction_matrix(train, n_owners, n_items).toarray() > 0
    top = lambda scores: np.argsort(-np.where(known[probe], -np.inf, scores), axis=1, kind="stable")[:, :10]
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top(sansa(probe)), top(ease(probe)))])
    assert overlap > 0.7
    tuned = baselines.tune_sansa(train, n_owners, n_items, max_validation_owners=50)
    assert tuned.lam in baselines.SANSA_LAMBDAS and set(tuned.validation) == set(baselines.SANSA_LAMBDAS)
    got = evaluate_rankings(tuned.model, train, heldout, n_items)
    popular = evaluate_rankings(most_popular_scores(train, n_items), train, heldout, n_items)
    assert got["recall@10"] > 1.5 * popular["recall@10"]


def test_sansa_fits_a_catalog_whose_items_without_rows_include_the_last():
    """Most of a million-item catalog has no train row; sansa's own column norms fail on empty last columns
    (IndexError in np.add.reduceat, seen at 1M items) and are wrong for empty ones inside. Such items score below the rest."""
    pytest.importorskip("sansa", reason="the scale extra (pip install -e .[scale]) is not installed")
    owners, items, n_owners, n_items = _block_data(seed=3)
    spread = items * 2  # every other catalog item, and the last, has no row
    model = baselines.fit_sansa((owners, spread), n_owners, 2 * n_items + 1, lam=10.0, weights_per_item=n_items)
    dense = baselines.fit_sansa((owners, items), n_owners, n_items, lam=10.0, weights_per_item=n_items)
    probe = np.arange(n_owners)
    scores = model(probe)
    assert scores.shape == (n_owners, 2 * n_items + 1)
    np.testing.assert_allclose(scores[:, ::2][:, :n_items], dense(probe), rtol=1e-5, atol=1e-6)  # the same model on the items with rows
    assert (scores[:, 1::2] == 0).all()  # no rows, no popularity: below every item that has one


def test_sansa_breaks_its_zero_score_ties_by_popularity():
    pytest.importorskip("sansa", reason="the scale extra (pip install -e .[scale]) is not installed")
    # Owner 0 hired item 0 only; items 3 and 4 are never co-hired with it, so SANSA scores them 0: 4 is the more popular.
    train = (np.array([0, 1, 1, 2, 3, 4, 5]), np.array([0, 0, 1, 4, 4, 3, 2]))
    model = baselines.fit_sansa(train, 6, 5, lam=1.0, weights_per_item=5)
    scores = model(np.array([0]))[0]
    assert scores[4] > scores[3] and scores[1] > scores[4]
