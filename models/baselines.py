"""Baselines every retrieval number is compared with: most-popular, EASE, iALS and (past EASE's item limit) SANSA.

Both return a `scores_fn(owner_index_batch) -> [batch, n_items]` for
`retrieval_metrics.evaluate_rankings`, so they run on exactly the same split
and protocol as the trained model. Pure numpy/scipy.

EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): with X the binary
owner x item train matrix, P = (X^T X + lambda I)^-1 and
B = I - P diag(1 / diag(P)) (so diag(B) = 0); an owner's scores are X_u B.
It is a strong, cheap reference for collaborative filtering, but B is a dense
n_items x n_items matrix, hence the item limit.

iALS (Hu et al. 2008; Rendle et al. 2021 on tuning it) through the `implicit`
library: owner and item factors by alternating least squares on the binary
matrix with confidence 1 + alpha. Tuned the same way as EASE.

SANSA (Spisak et al. 2023, "Scalable Approximate NonSymmetric Autoencoder
for collaborative filtering") through the `sansa` library: EASE's B as the
product of two sparse factors, from an incomplete LDL^T of X^T X + lambda I
and a sparse approximate inverse; built for millions of items, where dense
EASE cannot run. An optional install (`pip install -e .[scale]`: it needs
SuiteSparse's headers). Tuned the same way as EASE.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from models.retrieval_metrics import DEFAULT_KS, Pairs, ScoresFn, evaluate_rankings, random_split

# 20k items: B and the Gram matrix are 1.6 GB each in float32.
DEFAULT_MAX_ITEMS = 20_000
DEFAULT_LAMBDAS = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
TUNE_METRIC = "ndcg@10"


def most_popular_scores(train_pairs: Pairs, n_items: int) -> ScoresFn:
    """Scores = train interaction count per item, the same for every owner."""
    counts = np.bincount(np.asarray(train_pairs[1], np.int64), minlength=n_items).astype(np.float64)
    if len(counts) != n_items:
        raise ValueError(f"item index {len(counts) - 1} out of range for n_items={n_items}")

    def scores_fn(owners: np.ndarray) -> np.ndarray:
        return np.tile(counts, (len(owners), 1))

    return scores_fn


def interaction_matrix(pairs: Pairs, n_owners: int, n_items: int) -> sparse.csr_matrix:
    """Binary owner x item CSR matrix (repeated pairs count once)."""
    owners, items = (np.asarray(a, np.int64) for a in pairs)
    matrix = sparse.csr_matrix((np.ones(len(owners), np.float64), (owners, items)), shape=(n_owners, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


@dataclass
class EASE:
    """A fitted EASE model; calling it with owner indices gives their scores over the catalog."""

    weights: np.ndarray  # B, [n_items, n_items], zero diagonal
    interactions: sparse.csr_matrix  # X, the binary train matrix the scores start from
    lam: float

    def __call__(self, owners: np.ndarray) -> np.ndarray:
        return np.asarray(self.interactions[np.asarray(owners)] @ self.weights)


@dataclass
class TunedEASE:
    """EASE refit on all train rows with the lambda that won on the validation slice."""

    model: EASE
    lam: float
    validation: Dict[float, Dict[str, float]] = field(default_factory=dict)  # lambda -> metrics


def fit_ease(train_pairs: Pairs, n_owners: int, n_items: int, lam: float,
             max_items: int = DEFAULT_MAX_ITEMS) -> EASE:
    """Closed-form EASE on the binary train matrix."""
    _check_size(n_items, max_items)
    interactions = interaction_matrix(train_pairs, n_owners, n_items)
    return EASE(ease_weights(_gram(interactions), lam), interactions, float(lam))


def ease_weights(gram: np.ndarray, lam: float) -> np.ndarray:
    """B from G = X^T X, in G's own memory and dtype: Cholesky inverse, half the flops of a general inverse.

    Nothing of n_items^2 is allocated besides G, so float32 EASE fits 20k items in under 2 GB.
    """
    if lam <= 0:
        raise ValueError(f"lambda must be > 0 (it makes X^T X + lambda I invertible), got {lam}")
    n = gram.shape[0]
    gram[np.diag_indices(n)] += lam
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    # G is symmetric, so its transpose is the same matrix in Fortran order: no copy for LAPACK.
    factor, info = potrf(gram.T, lower=False, clean=False, overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"X^T X + lambda I is not positive definite (potrf info={info})")
    inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"cannot invert X^T X + lambda I (potri info={info})")
    valid_upper = True  # potri fills only the triangle it was given
    if not inverse.flags.c_contiguous:
        inverse, valid_upper = inverse.T, False  # P is symmetric: the C-ordered view is the same matrix, and X_u B wants C order
    _mirror_triangle(inverse, upper=valid_upper)
    inverse /= -np.diag(inverse).copy()  # column j divided by -P_jj
    inverse[np.diag_indices(n)] = 0.0
    return inverse


def _mirror_triangle(matrix: np.ndarray, upper: bool, block: int = 1024) -> None:
    """Fills the other triangle of a square matrix from the valid one, in place, a block of rows at a time."""
    if not upper:
        _mirror_triangle(matrix.T, upper=True, block=block)
        return
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        matrix[start:stop, :start] = matrix[:start, start:stop].T
        square = matrix[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        square[lower] = square.T[lower]


def tune_ease(train_pairs: Pairs, n_owners: int, n_items: int, lambdas: Sequence[float] = DEFAULT_LAMBDAS,
              validation_fraction: float = 0.1, seed: int = 0, ks: Sequence[int] = DEFAULT_KS,
              metric: str = TUNE_METRIC, max_items: int = DEFAULT_MAX_ITEMS,
              batch_size: Optional[int] = None) -> TunedEASE:
    """Pick lambda by `metric` on a random validation slice of the train rows, then refit on all of them.

    The test rows are never looked at, so the reported EASE number is not tuned on test.
    Ties go to the first lambda in `lambdas`.
    """
    if not lambdas:
        raise ValueError("lambdas must not be empty")
    _check_size(n_items, max_items)
    owners, items = (np.asarray(a, np.int64) for a in train_pairs)
    validation = random_split(len(owners), validation_fraction, seed)
    fit_pairs = (owners[~validation], items[~validation])
    valid_pairs = (owners[validation], items[validation])
    fit_matrix = interaction_matrix(fit_pairs, n_owners, n_items)
    gram = _gram(fit_matrix)
    scores: Dict[float, Dict[str, float]] = {}
    for lam in lambdas:
        model = EASE(ease_weights(gram.copy(), lam), fit_matrix, float(lam))
        scores[float(lam)] = evaluate_rankings(model, fit_pairs, valid_pairs, n_items, ks=ks, batch_size=batch_size)
        del model
    if metric not in next(iter(scores.values())):
        raise ValueError(f"unknown metric {metric!r}; have {sorted(next(iter(scores.values())))}")
    best = max(scores, key=lambda lam: (np.nan_to_num(scores[lam][metric], nan=-1.0), -list(scores).index(lam)))
    del gram
    return TunedEASE(fit_ease(train_pairs, n_owners, n_items, best, max_items), best, scores)


def _gram(interactions: sparse.csr_matrix) -> np.ndarray:
    """Dense X^T X in float32 (C order): counts are exact there, and B's rankings match float64's."""
    return np.ascontiguousarray((interactions.T @ interactions).toarray(), np.float32)


def _check_size(n_items: int, max_items: int) -> None:
    if n_items > max_items:
        gigabytes = n_items**2 * 4 / 2**30
        raise ValueError(f"EASE needs dense {n_items} x {n_items} float32 matrices ({gigabytes:.1f} GB each, "
                         f"2 at once while tuning); n_items={n_items} exceeds max_items={max_items}. "
                         "Raise max_items if the memory is there, or use a sampled/sparse baseline.")


IALS_GRID = tuple(
    {"factors": factors, "regularization": reg, "alpha": alpha}
    for factors in (128, 512) for reg in (0.1, 10.0) for alpha in (1.0, 10.0)
)
IALS_ITERATIONS = 15


@dataclass
class IALS:
    """Fitted iALS factors; calling it with owner indices gives their scores over the catalog."""

    owner_factors: np.ndarray
    item_factors: np.ndarray
    params: Dict[str, float]

    def __call__(self, owners: np.ndarray) -> np.ndarray:
        return self.owner_factors[np.asarray(owners)] @ self.item_factors.T


def fit_ials(train_pairs: Pairs, n_owners: int, n_items: int, factors: int, regularization: float, alpha: float,
             iterations: int = IALS_ITERATIONS, seed: int = 0) -> IALS:
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=alpha, iterations=iterations,
                                    random_state=seed, calculate_training_loss=False)
    model.fit(interaction_matrix(train_pairs, n_owners, n_items).astype(np.float32), show_progress=False)
    params = {"factors": factors, "regularization": regularization, "alpha": alpha}
    return IALS(np.asarray(model.user_factors), np.asarray(model.item_factors), params)


@dataclass
class TunedIALS:
    model: IALS
    params: Dict[str, float]
    validation: Dict[str, Dict[str, float]] = field(default_factory=dict)  # params as text -> metrics


def tune_ials(train_pairs: Pairs, n_owners: int, n_items: int, grid: Sequence[Dict[str, float]] = IALS_GRID,
              validation_fraction: float = 0.1, seed: int = 0, metric: str = TUNE_METRIC) -> TunedIALS:
    """Pick factors/regularization/alpha by `metric` on the same validation slice as tune_ease, then refit on all train rows."""
    owners, items = (np.asarray(a, np.int64) for a in train_pairs)
    validation = random_split(len(owners), validation_fraction, seed)
    fit_pairs, valid_pairs = (owners[~validation], items[~validation]), (owners[validation], items[validation])
    scores = {}
    for params in grid:
        model = fit_ials(fit_pairs, n_owners, n_items, seed=seed, **params)
        scores[str(params)] = evaluate_rankings(model, fit_pairs, valid_pairs, n_items)
    best = max(grid, key=lambda params: np.nan_to_num(scores[str(params)][metric], nan=-1.0))
    return TunedIALS(fit_ials(train_pairs, n_owners, n_items, seed=seed, **best), dict(best), scores)


SANSA_LAMBDAS = (1.0, 10.0, 100.0)
# Nonzeros a catalog item gets in each sparse factor: the factors take about 24 bytes a nonzero, so 1M items cost 1.2 GB.
SANSA_WEIGHTS_PER_ITEM = 50


@dataclass
class SANSA:
    """A fitted SANSA model; calling it with owner indices gives their scores over the catalog.

    Its scores are sparse: an item no factor path reaches scores exactly 0. Those ties are broken by
    train popularity (a tiny fraction of one score step), as a user would fill an empty row.
    """

    model: object  # sansa.SANSA, fitted on the `active` items only
    interactions: sparse.csr_matrix  # owners x active items
    lam: float
    popularity: np.ndarray  # in [0, 1): each catalog item's train count over the largest count + 1
    active: np.ndarray  # catalog positions of the items with a train row

    def __call__(self, owners: np.ndarray) -> np.ndarray:
        scores = np.zeros((len(owners), len(self.popularity)), np.float64)
        scores[:, self.active] = self.model.forward(self.interactions[np.asarray(owners)]).toarray()
        zero = scores == 0.0
        step = np.abs(scores[~zero]).min() if (~zero).any() else 1.0
        scores[zero] = (1e-3 * step * np.broadcast_to(self.popularity, scores.shape))[zero]
        return scores


def fit_sansa(train_pairs: Pairs, n_owners: int, n_items: int, lam: float, weights_per_item: int = SANSA_WEIGHTS_PER_ITEM) -> SANSA:
    """SANSA on the binary train matrix: incomplete Cholesky (for very large, sparse catalogs) and UMR inverse.

    Fitted on the items that have a train row: sansa's column norms (np.add.reduceat over the Gramian's
    indptr) are wrong for an empty column and fail outright when the last ones are empty, as most of a
    million-item catalog with a million rows is. An item with no row scores 0, its tie broken by popularity.
    """
    from sansa import SANSA as SansaModel, ICFGramianFactorizerConfig, SANSAConfig, UMRUnitLowerTriangleInverterConfig

    counts = np.bincount(np.asarray(train_pairs[1], np.int64), minlength=n_items).astype(np.float64)
    active = np.flatnonzero(counts > 0)
    interactions = interaction_matrix(train_pairs, n_owners, n_items)[:, active].tocsr()
    config = SANSAConfig(l2=float(lam), weight_matrix_density=min(1.0, weights_per_item / max(1, len(active))),
                         gramian_factorizer_config=ICFGramianFactorizerConfig(),
                         lower_triangle_inverter_config=UMRUnitLowerTriangleInverterConfig(scans=1, finetune_steps=5))
    return SANSA(SansaModel(config).fit(interactions), interactions, float(lam), counts / (counts.max() + 1.0), active)


@dataclass
class TunedSANSA:
    model: SANSA
    lam: float
    validation: Dict[float, Dict[str, float]] = field(default_factory=dict)  # lambda -> metrics


def tune_sansa(train_pairs: Pairs, n_owners: int, n_items: int, lambdas: Sequence[float] = SANSA_LAMBDAS,
               validation_fraction: float = 0.1, seed: int = 0, metric: str = TUNE_METRIC, max_validation_owners: int = 2000,
               log=lambda message: None) -> TunedSANSA:
    """Pick lambda by `metric` on the same validation slice of the train rows as tune_ease, then refit on all of them.

    The slice is scored for a seeded sample of `max_validation_owners` of its owners: at a million items a
    ranking costs a million scores an owner.
    """
    owners, items = (np.asarray(a, np.int64) for a in train_pairs)
    validation = random_split(len(owners), validation_fraction, seed)
    fit_pairs = (owners[~validation], items[~validation])
    scored = np.unique(owners[validation])
    if len(scored) > max_validation_owners:
        scored = np.random.default_rng(seed).choice(scored, max_validation_owners, replace=False)
    keep = validation & np.isin(owners, scored)
    valid_pairs = (owners[keep], items[keep])
    scores: Dict[float, Dict[str, float]] = {}
    for lam in lambdas:
        scores[float(lam)] = evaluate_rankings(fit_sansa(fit_pairs, n_owners, n_items, lam), fit_pairs, valid_pairs, n_items)
        log(f"SANSA lambda {lam:g}: {metric} {scores[float(lam)][metric]:.4f} on the validation slice")
    best = max(scores, key=lambda lam: (np.nan_to_num(scores[lam][metric], nan=-1.0), -list(scores).index(lam)))
    return TunedSANSA(fit_sansa(train_pairs, n_owners, n_items, best), best, scores)
