"""Closed-form item factors: the EASE / DLAE family (Steck 2019, 2020) in a low-rank, two-tower form.

With X the binary owner x item matrix, G = X^T X and a diagonal penalty

    Lambda = lambda I + p / (1 - p) diag(G)      (p = 0: EASE's ridge; p > 0: DLAE's dropout penalty),

DLAE scores an owner's unseen items by x_u B with B = (G + Lambda)^-1 G, and EDLAE
(EASE's zero-diagonal constraint, here with the same penalty) by B = -P diag(1/P_jj),
P = (G + Lambda)^-1. Write Lambda = r W^-2 for a diagonal W and a scalar r (p = 0:
W = I, r = lambda; p > 0: W = Lambda^-1/2, r = 1) and take the eigendecomposition
W G W = V S V^T. Then (G + Lambda)^-1 = W (I - V D V^T) W / r with D = S / (S + r),
the identity part touching only the owner's own items, which are never ranked. So
on unseen items both rankings are a dot product:

    query(u)     = sum over u's hires h of w_h V[h] D
    candidate(j) = V[j] / w_j                          (DLAE)
                 = V[j] / (w_j (1 - sum_k V[j,k]^2 D_k))  (EDLAE = EASE when p = 0)

Components with S << r are shrunk to nothing, so the top `rank` eigenvectors carry
the model. They come from a randomized range finder on the sparse X W (seconds at
7k items; memory items x rank, not items^2), so the same code runs at a million
influencers with a smaller rank. Which penalty and which form fit the data is
chosen on the Trainer's validation rows (`tune`), at SEARCH_RANK; then the rank
is doubled while the validation metric still gains. DLAE's penalty leaves the
tail of the spectrum only mildly shrunk, so it needs more components than EASE:
on anime, rank 1024 kept two thirds of DLAE's gain over EASE and 2048 all of it.
"""

import dataclasses
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from scipy import linalg, sparse

MAX_RANK = 2048
SEARCH_RANK = 1024  # the penalty search's rank; the served rank is then chosen up to MAX_RANK
MIN_RANK_GAIN = 0.002  # a doubled rank is kept when it lifts the validation metric by at least 0.2%
TOP_PENALTIES = 3  # the best penalties at SEARCH_RANK that are tried again at each doubled rank
# Largest items x rank float32 table the factors may take (256 MiB): caps the rank for catalogs above 32k items.
# The search holds several at once (basis, products, each contender's spectrum, query and candidate): at 1M items
# 2**28 cells (rank 268) took 5.4 GB and 236 s for one spectrum, 2**26 (rank 67) 1.4 GB and 26 s.
MAX_FACTOR_CELLS = 2**26
POWER_ITERATIONS = 4
WARM_ITERATIONS = 2  # after a start from a nearby matrix's eigenvectors (the exports' refits on more rows)
LAMBDAS = (30.0, 100.0, 300.0, 1000.0)
DROPOUTS = (0.1, 0.25, 0.5)  # p of DLAE's penalty, tried at the best EASE lambda and its neighbours


def factor_rank(n_items: int, n_owners: int) -> int:
    """The largest rank allowed: at most MAX_RANK, the matrix's own rank bound and the memory cap."""
    return int(max(1, min(MAX_RANK, n_items, n_owners, MAX_FACTOR_CELLS // max(1, n_items))))


@dataclasses.dataclass(frozen=True)
class Penalty:
    """Lambda = lam I + p / (1 - p) diag(X^T X), and whether B keeps EASE's zero diagonal."""

    lam: float
    dropout: float = 0.0
    zero_diagonal: bool = True

    def __post_init__(self) -> None:
        if self.lam <= 0:
            raise ValueError(f"lambda must be > 0, got {self.lam}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def name(self) -> str:
        form = "EASE" if self.zero_diagonal and self.dropout == 0 else "EDLAE" if self.zero_diagonal else "DLAE"
        return f"{form} (lambda {self.lam:g}" + (f", p {self.dropout:g})" if self.dropout else ")")

    @property
    def ridge(self) -> float:
        """r in Lambda = r W^-2."""
        return float(self.lam) if self.dropout == 0 else 1.0

    def weights(self, counts: np.ndarray) -> np.ndarray:
        """w in Lambda = r W^-2: none for a plain ridge, so one spectrum serves every lambda."""
        if self.dropout == 0:
            return np.ones(len(counts), np.float64)
        return 1.0 / np.sqrt(self.lam + self.dropout / (1.0 - self.dropout) * np.asarray(counts, np.float64))


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """The top eigenpairs of W X^T X W (largest first), W = diag(weights)."""

    values: np.ndarray  # [rank]
    vectors: np.ndarray  # [items, rank], orthonormal columns
    weights: np.ndarray  # [items]


@dataclasses.dataclass(frozen=True)
class ItemFactors:
    """Per-item vectors whose dot product is the closed form's ranking (see the module docstring)."""

    query: np.ndarray  # [items, rank]: summed over an owner's hires
    candidate: np.ndarray  # [items, rank]
    penalty: Penalty


def interactions(owner_positions: np.ndarray, item_positions: np.ndarray, n_owners: int, n_items: int) -> sparse.csr_matrix:
    """Binary owner x item matrix (a repeated pair counts once)."""
    matrix = sparse.csr_matrix(
        (np.ones(len(owner_positions), np.float32), (np.asarray(owner_positions), np.asarray(item_positions))), shape=(n_owners, n_items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def orthonormal(columns: np.ndarray) -> np.ndarray:
    """An orthonormal basis of `columns`' span: Cholesky QR twice (CholeskyQR2, Fukaya et al. 2014).

    A fraction of Householder QR's time at 7k x 2048: BLAS products only, the first Gram matrix in
    float64 so that its squared condition number still factors; the second pass restores the
    orthogonality the first loses to rounding. A rank-deficient block (a rank above the data's) takes Householder QR.
    """
    basis = np.asarray(columns, np.float32)
    try:
        for precision in (np.float64, np.float32):  # the second pass starts from nearly orthonormal columns
            wide = basis.astype(precision, copy=False)
            lower = np.linalg.cholesky((wide.T @ wide).astype(np.float64))
            inverse = linalg.solve_triangular(lower, np.eye(len(lower)), lower=True, check_finite=False)
            basis = basis @ inverse.T.astype(np.float32)
    except np.linalg.LinAlgError:
        return np.linalg.qr(np.asarray(columns, np.float32))[0]
    if not np.all(np.isfinite(basis)):
        return np.linalg.qr(np.asarray(columns, np.float32))[0]
    return basis


def top_spectrum(matrix: sparse.csr_matrix, rank: int, weights: Optional[np.ndarray] = None, seed: int = 0,
                 iterations: int = POWER_ITERATIONS, start: Optional[np.ndarray] = None) -> Spectrum:
    """Randomized subspace iteration (Halko et al. 2011) for the top eigenpairs of W X^T X W.

    `start`: the eigenvectors of a nearby matrix (the same penalty on fewer rows), `rank` columns;
    iteration then begins from their span instead of a random one, so WARM_ITERATIONS suffice.
    """
    n_items = matrix.shape[1]
    weights = np.ones(n_items, np.float64) if weights is None else np.asarray(weights, np.float64)
    scaled = (matrix @ sparse.diags(weights.astype(np.float32))).tocsr()
    rank = min(rank, n_items)
    transposed = scaled.T.tocsr()
    if start is not None and start.shape == (n_items, rank):
        basis, iterations = orthonormal(transposed @ (scaled @ start)), WARM_ITERATIONS
    else:
        basis = orthonormal(transposed @ (scaled @ np.random.default_rng(seed).standard_normal((n_items, rank)).astype(np.float32)))
    for _ in range(iterations):
        basis = orthonormal(transposed @ (scaled @ basis))
    projected = scaled @ basis
    values, rotation = np.linalg.eigh(projected.T @ projected)
    order = np.argsort(values)[::-1]
    return Spectrum(np.maximum(values[order], 0.0).astype(np.float32), (basis @ rotation[:, order]).astype(np.float32), weights)


def spectrum_for(matrix: sparse.csr_matrix, penalty: Penalty, rank: int, seed: int = 0, start: Optional[np.ndarray] = None) -> Spectrum:
    """The spectrum a penalty needs (its W from the item counts of `matrix`); `start` as in top_spectrum."""
    return top_spectrum(matrix, rank, penalty.weights(np.asarray(matrix.sum(axis=0)).ravel()), seed=seed, start=start)


def factors(spectrum: Spectrum, penalty: Penalty) -> ItemFactors:
    """The query and candidate vectors of one penalty; `spectrum` must be the one it needs (spectrum_for)."""
    shrink = spectrum.values / (spectrum.values + penalty.ridge)
    weights = spectrum.weights.astype(np.float32)[:, None]
    candidate = spectrum.vectors / weights
    if penalty.zero_diagonal:
        # 1 - (V D V^T)_jj from the kept components (at 7k items and rank 1024 this matches dense EASE).
        candidate = candidate / np.maximum(1.0 - (spectrum.vectors**2) @ shrink, 1e-6)[:, None]
    return ItemFactors(query=(spectrum.vectors * shrink * weights).astype(np.float32), candidate=candidate.astype(np.float32), penalty=penalty)


def history_queries(item_factors: ItemFactors, histories: Sequence[np.ndarray]) -> np.ndarray:
    """[owners, rank]: each owner's summed query vectors over its hires (catalog positions)."""
    out = np.zeros((len(histories), item_factors.query.shape[1]), np.float32)
    for row, positions in enumerate(histories):
        if len(positions):
            out[row] = item_factors.query[np.asarray(positions)].sum(axis=0)
    return out


@dataclasses.dataclass
class Tuned:
    """The penalty and rank chosen on the validation rows, its factors (fit on the rows given) and every try."""

    factors: ItemFactors
    spectrum: Spectrum
    tried: List[Dict] = dataclasses.field(default_factory=list)

    @property
    def rank(self) -> int:
        return int(self.factors.query.shape[1])


def tune(matrix: sparse.csr_matrix, score: Callable[[ItemFactors], float], rank: int, seed: int = 0,
         lambdas: Sequence[float] = LAMBDAS, dropouts: Sequence[float] = DROPOUTS,
         log: Callable[[str], None] = lambda message: None) -> Tuned:
    """The penalty with the best `score` (a validation metric of the factors), by coordinate search, then its rank.

    EASE's lambdas share one spectrum; then DLAE's dropout penalty at the best lambda, and that
    lambda's neighbours at the best dropout. Both forms (zero diagonal or not) are scored on
    every spectrum, which costs no second decomposition. The search runs at SEARCH_RANK (or
    `rank`, if smaller); then the rank is doubled up to `rank` while the best of the
    TOP_PENALTIES penalties at the doubled rank beats the best so far by MIN_RANK_GAIN. The
    runners-up matter: a truncated spectrum favours stronger shrinkage, so on anime lambda 300
    won at rank 1024 while lambda 100, better when dense, wins at 2048.
    """
    tried: List[Dict] = []
    best: Dict = {}

    def consider(spectrum: Spectrum, penalty_of: Callable[[bool], Penalty]) -> None:
        for zero_diagonal in (True, False):
            penalty = penalty_of(zero_diagonal)
            if penalty.dropout == 0 and not zero_diagonal:
                continue  # a plain ridge without the constraint ranks each owner's own hires: no model
            value = score(factors(spectrum, penalty))
            tried.append({"penalty": penalty.name, "lambda": penalty.lam, "dropout": penalty.dropout, "zero_diagonal": zero_diagonal,
                          "rank": int(spectrum.vectors.shape[1]), "score": value})
            if not best or value > best["score"]:
                best.update(score=value, penalty=penalty, spectrum=spectrum)

    started = time.monotonic()
    search_rank = min(rank, SEARCH_RANK)
    ridge = spectrum_for(matrix, Penalty(lambdas[0]), search_rank, seed)
    for lam in lambdas:
        consider(ridge, lambda zero_diagonal, lam=lam: Penalty(lam, 0.0, zero_diagonal))
    log(f"EASE lambdas scored in {time.monotonic() - started:.0f} s; best {best['penalty'].name}")
    base = best["penalty"].lam
    for dropout in dropouts:
        penalty = Penalty(base, dropout)
        consider(spectrum_for(matrix, penalty, search_rank, seed), lambda zero_diagonal, p=penalty: dataclasses.replace(p, zero_diagonal=zero_diagonal))
    if best["penalty"].dropout:
        dropout = best["penalty"].dropout
        for lam in (base / 3.0, base * 3.0):
            penalty = Penalty(lam, dropout)
            consider(spectrum_for(matrix, penalty, search_rank, seed), lambda zero_diagonal, p=penalty: dataclasses.replace(p, zero_diagonal=zero_diagonal))
    log(f"penalties scored in {time.monotonic() - started:.0f} s; best {best['penalty'].name} at rank {search_rank}")
    # A truncated spectrum favours the stronger shrinkage, so the runners-up go up in rank too.
    ranked = sorted(tried, key=lambda t: -t["score"])
    contenders = list(dict.fromkeys(Penalty(t["lambda"], t["dropout"], t["zero_diagonal"]) for t in ranked))[:TOP_PENALTIES]
    current = search_rank
    while current < rank:
        current = min(2 * current, rank)
        spectra: Dict[tuple, Spectrum] = {}
        leader: Dict = {}
        for penalty in contenders:
            key = (penalty.lam if penalty.dropout else 0.0, penalty.dropout)  # both forms, and every ridge, share a spectrum
            spectrum = spectra[key] = spectra.get(key) or spectrum_for(matrix, penalty, current, seed)
            value = score(factors(spectrum, penalty))
            tried.append({"penalty": penalty.name, "lambda": penalty.lam, "dropout": penalty.dropout, "zero_diagonal": penalty.zero_diagonal,
                          "rank": current, "score": value})
            log(f"{penalty.name} at rank {current}: {value:.4f}, against {best['score']:.4f} ({best['penalty'].name}, rank {best['spectrum'].vectors.shape[1]})")
            if not leader or value > leader["score"]:
                leader = {"score": value, "penalty": penalty, "spectrum": spectrum}
        if leader["score"] < best["score"] * (1.0 + MIN_RANK_GAIN):
            break
        best.update(leader)
        contenders = [leader["penalty"]]
    return Tuned(factors(best["spectrum"], best["penalty"]), best["spectrum"], tried)
