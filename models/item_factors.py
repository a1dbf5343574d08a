"""Closed-form item factors: EASE (Steck 2019) in a low-rank, two-tower form.

EASE scores an owner's unseen items by x_u B with B = -P diag(1/P_jj),
P = (X^T X + lambda I)^-1, X the binary owner x item matrix. With the
eigendecomposition X^T X = V S V^T,

    P = (I - V diag(S / (S + lambda)) V^T) / lambda,

and the identity term only touches the owner's own items, which are never
ranked. So on unseen items EASE's ranking is a dot product:

    query(u)     = sum over u's hires h of V[h] * S / (S + lambda)
    candidate(j) = V[j] / (lambda * P_jj)

Components with S << lambda are shrunk to nothing, so the top `rank`
eigenvectors carry the model; on the anime data rank 1024 matches dense EASE
(recall@10 0.440 vs 0.438). The top eigenvectors come from a randomized
range finder on the sparse X (a few seconds at 7k items; memory grows as
items x rank, not items^2), so the same code runs at a million influencers
with a smaller rank. The two vectors join the trained towers' embeddings:
serving, ScaNN and batch scoring all stay one dot product.
"""

import dataclasses
from typing import Sequence

import numpy as np
from scipy import sparse

MAX_RANK = 1024
# Largest items x rank float32 table the factors may take (1 GiB): caps the rank for huge catalogs.
MAX_FACTOR_CELLS = 2**28
POWER_ITERATIONS = 4
LAMBDAS = (30.0, 100.0, 300.0, 1000.0)


def factor_rank(n_items: int, n_owners: int) -> int:
    """The rank used: at most MAX_RANK, the matrix's own rank bound and the memory cap."""
    return int(max(1, min(MAX_RANK, n_items, n_owners, MAX_FACTOR_CELLS // max(1, n_items))))


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """The top eigenpairs of X^T X (largest first)."""

    values: np.ndarray  # [rank]
    vectors: np.ndarray  # [items, rank], orthonormal columns


@dataclasses.dataclass(frozen=True)
class ItemFactors:
    """Per-item vectors whose dot product is EASE's ranking (see the module docstring)."""

    query: np.ndarray  # [items, rank]: summed over an owner's hires
    candidate: np.ndarray  # [items, rank]
    lam: float


def interactions(owner_positions: np.ndarray, item_positions: np.ndarray, n_owners: int, n_items: int) -> sparse.csr_matrix:
    """Binary owner x item matrix (a repeated pair counts once)."""
    matrix = sparse.csr_matrix(
        (np.ones(len(owner_positions), np.float32), (np.asarray(owner_positions), np.asarray(item_positions))), shape=(n_owners, n_items)
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def top_spectrum(matrix: sparse.csr_matrix, rank: int, seed: int = 0, iterations: int = POWER_ITERATIONS) -> Spectrum:
    """Randomized subspace iteration (Halko et al. 2011) for the top eigenpairs of X^T X."""
    n_items = matrix.shape[1]
    rank = min(rank, n_items)
    transposed = matrix.T.tocsr()
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(transposed @ (matrix @ rng.standard_normal((n_items, rank)).astype(np.float32)))[0]
    for _ in range(iterations):
        basis = np.linalg.qr(transposed @ (matrix @ basis))[0]
    projected = matrix @ basis
    values, rotation = np.linalg.eigh(projected.T @ projected)
    order = np.argsort(values)[::-1]
    return Spectrum(np.maximum(values[order], 0.0).astype(np.float32), (basis @ rotation[:, order]).astype(np.float32))


def factors(spectrum: Spectrum, lam: float) -> ItemFactors:
    """EASE's query and candidate vectors at one lambda (the spectrum does not depend on it)."""
    if lam <= 0:
        raise ValueError(f"lambda must be > 0, got {lam}")
    shrink = spectrum.values / (spectrum.values + lam)
    # P_jj from the kept components (at 7k items and rank 1024 this matches dense EASE).
    diagonal = np.maximum((1.0 - (spectrum.vectors**2) @ shrink) / lam, 1e-12)
    return ItemFactors(
        query=(spectrum.vectors * shrink).astype(np.float32),
        candidate=(spectrum.vectors / (lam * diagonal[:, None])).astype(np.float32),
        lam=float(lam),
    )


def history_queries(item_factors: ItemFactors, histories: Sequence[np.ndarray]) -> np.ndarray:
    """[owners, rank]: each owner's summed query vectors over its hires (catalog positions)."""
    out = np.zeros((len(histories), item_factors.query.shape[1]), np.float32)
    for row, positions in enumerate(histories):
        if len(positions):
            out[row] = item_factors.query[np.asarray(positions)].sum(axis=0)
    return out
