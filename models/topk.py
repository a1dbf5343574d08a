"""Top-k in numpy, defined once: exact top-k of a score matrix, of a catalog, and over-fetch-then-exclude.

Ties go to the lower index everywhere, as tf.math.top_k (the stock
`recommend`) does, so every exact ranking of the product agrees row for row.
The in-graph twin of `drop_excluded` is `models.filters.masked_top_k`.
"""

from typing import Collection, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores per row, best first, ties to the lower index.

    float32 without NaN (every served and validation score): tf.math.top_k, the stock model's own
    primitive, which breaks ties the same way and on 2 cores ranks a 4,700 x 7,400 matrix 5x faster
    than numpy. Otherwise argpartition then sort of the k candidates, NaN ranked last.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return np.zeros((scores.shape[0], 0), np.int64)
    if scores.dtype == np.float32 and not np.isnan(scores).any():
        return tf.math.top_k(scores, k).indices.numpy().astype(np.int64)
    if k == n:
        return np.lexsort((np.broadcast_to(np.arange(n), scores.shape), -scores), axis=1)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    kth = part_scores.min(axis=1)
    # Rows where the k-th score is tied with items outside the partition: redo exactly.
    ambiguous = np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k)
    for row in ambiguous:
        cand = np.flatnonzero(scores[row] >= kth[row])
        part[row] = cand[np.lexsort((cand, -scores[row, cand]))[:k]]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    return np.take_along_axis(part, order, axis=1)


def exact_top_k(
    queries: np.ndarray,
    embeddings: np.ndarray,
    k: int,
    exclude_positions: Optional[Sequence[np.ndarray]] = None,
    max_cells: int = 2**24,
) -> Tuple[np.ndarray, np.ndarray]:
    """(positions, scores) [B, min(k, N)] of the best catalog entries per query by dot product; -1 / nan past the allowed ones.

    `exclude_positions[q]` holds catalog positions query q must not get (its
    past hires). Queries go in chunks of at most `max_cells` scores (64 MiB of
    float32), so a million-influencer catalog never needs queries x catalog in memory.
    """
    n = embeddings.shape[0]
    k_eff = min(k, n)
    positions = np.empty((len(queries), k_eff), np.int64)
    top = np.empty((len(queries), k_eff), np.float32)
    step = max(1, max_cells // max(1, n))
    for start in range(0, len(queries), step):
        scores = queries[start : start + step].astype(np.float32) @ embeddings.T
        if exclude_positions is not None:
            for row, banned in enumerate(exclude_positions[start : start + step]):
                scores[row, banned] = -np.inf
        chunk = top_k(scores, k_eff)
        positions[start : start + step] = chunk
        top[start : start + step] = np.take_along_axis(scores, chunk, axis=1)
    finite = np.isfinite(top)
    return np.where(finite, positions, -1), np.where(finite, top, np.nan)


def drop_excluded(
    found_ids: np.ndarray, found_scores: np.ndarray, excludes: Sequence[Sequence[int]], k: int, catalog: Collection[int]
) -> Tuple[List[np.ndarray], List[np.ndarray], np.ndarray]:
    """An index's over-fetched candidates minus each row's excluded ids, cut to k.

    Returns per row the kept ids and scores (best first, at most k) and a
    boolean mask of the rows left short: fewer than min(k, allowed) results,
    where allowed counts the catalog (a set or id -> position map) minus that
    row's excluded ids. The caller
    answers those rows exactly, so results never come up short.
    """
    ids: List[np.ndarray] = []
    scores: List[np.ndarray] = []
    short = np.zeros(len(found_ids), bool)
    for row, banned in enumerate(excludes):
        banned = np.unique(np.asarray(banned, np.int64))
        keep = found_ids[row] >= 0
        keep &= ~np.isnan(found_scores[row])  # ScaNN's own padding, in models pushed before models.index.search_index
        if len(banned):
            keep &= ~np.isin(found_ids[row], banned)
        ids.append(found_ids[row][keep][:k])
        scores.append(found_scores[row][keep][:k])
        allowed = len(catalog) - sum(1 for i in banned.tolist() if i in catalog)
        short[row] = len(ids[-1]) < min(k, allowed)
    return ids, scores, short
