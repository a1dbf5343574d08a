"""The retrieval benchmark protocol (docs/benchmark.md), defined once.

Owners and items are dense integer indices (0..n_owners-1, 0..n_items-1);
interactions travel as `Pairs = (owner_indices, item_indices)`. For every owner
with at least one held-out item the whole catalog is ranked minus the owner's
train items; Recall@K = hits / min(K, n_heldout) and NDCG@K uses binary
relevance; both are averaged over those owners. Owners are scored in batches so
that a 100k-owner x 1M-item score matrix never exists at once.

Pure numpy: this runs inside TFX components and the benchmarks alike.
"""

from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from models.topk import top_k

Pairs = Tuple[np.ndarray, np.ndarray]
ScoresFn = Callable[[np.ndarray], np.ndarray]
TopKFn = Callable[[np.ndarray], np.ndarray]

DEFAULT_KS = (10, 20)
# Bytes per scored (owner, item) cell while ranking: the score (<= 8), its
# negated copy (8), argpartition's int64 index (8), boolean checks; rounded up.
_BYTES_PER_CELL = 32
DEFAULT_MEMORY_BUDGET = 512 * 2**20
# Suffix of the per-owner [owners, groups] recall arrays per_owner_rankings adds when given item groups.
BY_ITEM_GROUP = " by item group"


@dataclass(frozen=True)
class IndexedInteractions:
    """Interactions mapped to dense indices, plus what was dropped on the way."""

    owners: np.ndarray  # int64 owner index per kept row
    items: np.ndarray  # int64 item index per kept row
    owner_vocab: np.ndarray  # owner_vocab[i] = raw owner id of index i
    kept: np.ndarray  # bool per input row: its item was in the vocabulary
    n_dropped: int  # rows whose item (or owner, if a vocab was given) is unknown

    @property
    def pairs(self) -> Pairs:
        return self.owners, self.items


def build_vocab(ids: np.ndarray) -> np.ndarray:
    """Sorted distinct ids; position = dense index (deterministic, order-free)."""
    return np.unique(np.asarray(ids))


def lookup(ids: np.ndarray, vocab: np.ndarray) -> np.ndarray:
    """Dense index of each id in `vocab` (any order, no repeats), -1 where absent."""
    ids, vocab = np.asarray(ids), np.asarray(vocab)
    order = np.argsort(vocab, kind="stable")
    ordered = vocab[order]
    if len(ordered) > 1 and (ordered[1:] == ordered[:-1]).any():
        raise ValueError("vocabulary repeats an id; indices would be ambiguous")
    if len(ordered) == 0:
        return np.full(len(ids), -1, np.int64)
    pos = np.minimum(np.searchsorted(ordered, ids), len(ordered) - 1)
    found = ordered[pos] == ids
    return np.where(found, order[pos], -1).astype(np.int64)


def index_interactions(owner_ids: np.ndarray, item_ids: np.ndarray, item_vocab: np.ndarray,
                       owner_vocab: Optional[np.ndarray] = None) -> IndexedInteractions:
    """Map raw (owner id, item id) rows to dense indices; unknown items are dropped and counted.

    The item vocabulary is the catalog (every influencer, hired or not), so it is
    an input; the owner vocabulary defaults to the distinct owners of kept rows.
    """
    owner_ids, item_ids = np.asarray(owner_ids), np.asarray(item_ids)
    if owner_ids.shape != item_ids.shape or owner_ids.ndim != 1:
        raise ValueError(f"owner_ids and item_ids must be 1-D of one length, got {owner_ids.shape} and {item_ids.shape}")
    items = lookup(item_ids, item_vocab)
    kept = items >= 0
    if owner_vocab is None:
        owner_vocab = build_vocab(owner_ids[kept])
    owners = lookup(owner_ids, owner_vocab)
    kept &= owners >= 0
    return IndexedInteractions(owners[kept], items[kept], np.asarray(owner_vocab), kept, int((~kept).sum()))


def random_split(n_rows: int, heldout_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Boolean mask of held-out rows: exactly round(fraction * n) rows, chosen at random.

    The protocol splits history rows (not owners) at random with a fixed seed.
    """
    if not 0.0 <= heldout_fraction <= 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1], got {heldout_fraction}")
    mask = np.zeros(n_rows, bool)
    mask[np.random.default_rng(seed).permutation(n_rows)[:int(round(heldout_fraction * n_rows))]] = True
    return mask


def evaluate_rankings(scores_fn: ScoresFn, train_pairs: Pairs, heldout_pairs: Pairs, n_items: int,
                      ks: Sequence[int] = DEFAULT_KS, batch_size: Optional[int] = None,
                      memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Dict[str, float]:
    """Recall@K and NDCG@K of `scores_fn` over the whole catalog (train items masked).

    `scores_fn(owner_index_batch) -> [batch, n_items]` scores; higher is better.
    Ties are broken by the lower item index so results do not depend on
    argpartition internals. `batch_size` defaults to what fits `memory_budget`.
    """
    return owner_means(per_owner_rankings(scores_fn, train_pairs, heldout_pairs, n_items, ks, batch_size, memory_budget))


def per_owner_rankings(scores_fn: ScoresFn, train_pairs: Pairs, heldout_pairs: Pairs, n_items: int,
                       ks: Sequence[int] = DEFAULT_KS, batch_size: Optional[int] = None,
                       memory_budget: int = DEFAULT_MEMORY_BUDGET, item_groups: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """evaluate_rankings' metrics owner by owner ("owners": their indices), for paired comparisons.

    With `item_groups` (a group index 0..G-1 per item), also f"recall@{k}{BY_ITEM_GROUP}": [owners, G],
    each owner's recall@k over its held-out items of one group alone (NaN where it has none), from the same ranking.
    """
    ks = _check_ks(ks)
    depth = min(max(ks), n_items)
    if batch_size is None:
        batch_size = max(1, memory_budget // (_BYTES_PER_CELL * max(n_items, 1)))
    train_keys = _keys(train_pairs, n_items)

    def topk_fn(owners: np.ndarray) -> np.ndarray:
        scores = _writable_scores(scores_fn(owners), len(owners), n_items)
        rows, cols = _rows_items(train_keys, owners, n_items)
        scores[rows, cols] = -np.inf
        return top_k(scores, depth)

    return _per_owner(topk_fn, train_keys, heldout_pairs, n_items, ks, batch_size, filter_train=False, item_groups=item_groups)


def evaluate_topk(topk_fn: TopKFn, train_pairs: Pairs, heldout_pairs: Pairs, n_items: int,
                  ks: Sequence[int] = DEFAULT_KS, batch_size: int = 4096) -> Dict[str, float]:
    """The same metrics from precomputed rankings, e.g. an ANN index's neighbours.

    `topk_fn(owner_index_batch) -> [batch, depth]` item indices, best first,
    -1 = padding. Train items are removed from each row (order kept) before the
    cut at K, so ask the index for max(ks) plus the owner's train count to match
    `evaluate_rankings` exactly; a short row simply counts as misses.
    """
    ks = _check_ks(ks)
    return owner_means(_per_owner(topk_fn, _keys(train_pairs, n_items), heldout_pairs, n_items, ks, batch_size, filter_train=True))


def recall_against(reference_topk: np.ndarray, candidate_topk: np.ndarray, k: int) -> float:
    """Mean over rows of |reference[:k] & candidate[:k]| / |reference[:k]| (e.g. ScaNN vs brute force).

    Ids may be dense indices or raw ids of any size. -1 entries are padding and
    never match; rows without reference items are skipped.
    """
    reference, candidate = np.asarray(reference_topk)[:, :k], np.asarray(candidate_topk)[:, :k]
    if reference.shape[0] != candidate.shape[0]:
        raise ValueError(f"row counts differ: {reference.shape[0]} vs {candidate.shape[0]}")
    valid = reference >= 0
    # Dense codes so row * width + code cannot overflow whatever the raw ids are.
    distinct, codes = np.unique(np.concatenate([reference.ravel(), candidate.ravel()]), return_inverse=True)
    width = max(len(distinct), 1)
    reference = codes[:reference.size].reshape(reference.shape)
    candidate_valid = candidate >= 0
    candidate = codes[reference.size:].reshape(candidate.shape)
    rows = np.arange(reference.shape[0], dtype=np.int64)[:, None]
    cand_keys = np.unique((rows * width + candidate)[candidate_valid])
    found = np.isin(rows * width + reference, cand_keys) & valid
    n_ref = valid.sum(axis=1)
    if not (n_ref > 0).any():
        return float("nan")
    return float(np.mean(found.sum(axis=1)[n_ref > 0] / n_ref[n_ref > 0]))


def owner_means(per_owner: Dict[str, np.ndarray]) -> Dict[str, float]:
    """The means over owners of per_owner_rankings' output (coverage is one value; the by-group arrays are left out)."""
    n = len(per_owner["owners"])
    result = {key: (float(values.mean()) if n else float("nan")) for key, values in per_owner.items()
              if key != "owners" and not key.endswith(BY_ITEM_GROUP)}
    result["owners"] = n
    return result


def _per_owner(topk_fn: TopKFn, train_keys: np.ndarray, heldout_pairs: Pairs, n_items: int,
               ks: Tuple[int, ...], batch_size: int, filter_train: bool, item_groups: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    # Held-out items that are also train items are masked, so could never be
    # hit; they are not relevant (matters only with repeated pairs).
    heldout_keys = _keys(heldout_pairs, n_items)
    heldout_keys = heldout_keys[~_contains(train_keys, heldout_keys)]
    owners, n_relevant = np.unique(heldout_keys // n_items, return_counts=True)
    depth = max(ks)
    values = {f"{name}@{k}": [] for k in ks for name in ("recall", "ndcg")}
    if item_groups is not None:
        item_groups = np.asarray(item_groups, np.int64)
        n_groups = int(item_groups.max()) + 1 if len(item_groups) else 0
        # Held-out items per (owner, group), in the owners' order.
        relevant = np.zeros((len(owners), n_groups))
        np.add.at(relevant, (np.searchsorted(owners, heldout_keys // n_items), item_groups[heldout_keys % n_items]), 1.0)
        values.update({f"recall@{k}{BY_ITEM_GROUP}": [] for k in ks})
    shown = {k: np.zeros(n_items, bool) for k in ks}  # influencers in some owner's top k
    for start, stop in _batches(len(owners), batch_size):
        batch = owners[start:stop]
        ranked = np.asarray(topk_fn(batch))
        if ranked.ndim != 2 or ranked.shape[0] != len(batch):
            raise ValueError(f"top-k for {len(batch)} owners must be [batch, depth], got {ranked.shape}")
        ranked = ranked.astype(np.int64, copy=False)
        if ranked.size and ranked.max() >= n_items:
            raise ValueError(f"top-k item indices must be < n_items={n_items}, got {ranked.max()}")
        if filter_train:
            ranked = _drop_train(ranked, batch, train_keys, n_items)
        ranked = _pad(ranked[:, :depth], depth)
        for k in ks:
            top = ranked[:, :k]
            shown[k][top[top >= 0]] = True
        hits = _contains(heldout_keys, batch[:, None] * n_items + ranked) & (ranked >= 0)
        for k, (recall, ndcg) in zip(ks, _metrics(hits, n_relevant[start:stop], ks)):
            values[f"recall@{k}"].append(recall)
            values[f"ndcg@{k}"].append(ndcg)
        if item_groups is not None:
            for k in ks:
                values[f"recall@{k}{BY_ITEM_GROUP}"].append(_group_recall(hits[:, :k], ranked[:, :k], item_groups, relevant[start:stop], k))
    result = {key: np.concatenate(parts) if parts else np.zeros([0, n_groups] if key.endswith(BY_ITEM_GROUP) else [0])
              for key, parts in values.items()}
    # One value, not one per owner: the share of the catalog in some owner's top k (a model that shows
    # everyone the same few influencers covers little of it).
    result.update({f"coverage@{k}": np.array([shown[k].mean() if n_items else 0.0]) for k in ks})
    result["owners"] = owners
    return result


def _group_recall(hits: np.ndarray, top: np.ndarray, item_groups: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """[owners, groups] recall@k over each group's held-out items alone: hits of the group / min(k, its held-out items)."""
    found = np.zeros(relevant.shape)
    rows, cols = np.nonzero(hits)
    np.add.at(found, (rows, item_groups[top[rows, cols]]), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(relevant > 0, found / np.minimum(k, relevant), np.nan)


def _metrics(hits: np.ndarray, n_relevant: np.ndarray, ks: Tuple[int, ...]) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Per-owner (recall@k, ndcg@k) for each k from a [owners, depth] hit matrix."""
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])  # ideal[m] = DCG of m hits on top
    gains = np.cumsum(hits * discounts, axis=1)
    found = np.cumsum(hits, axis=1)
    for k in ks:
        denom = np.minimum(k, n_relevant)
        yield found[:, k - 1] / denom, gains[:, k - 1] / ideal[denom]


def _drop_train(ranked: np.ndarray, owners: np.ndarray, train_keys: np.ndarray, n_items: int) -> np.ndarray:
    """Remove train items and padding from each row, keeping order; pad with -1."""
    drop = (ranked < 0) | _contains(train_keys, owners[:, None] * n_items + ranked)
    order = np.argsort(drop, axis=1, kind="stable")
    out = np.take_along_axis(ranked, order, axis=1)
    out[np.take_along_axis(drop, order, axis=1)] = -1
    return out


def _pad(ranked: np.ndarray, depth: int) -> np.ndarray:
    if ranked.shape[1] >= depth:
        return ranked
    return np.pad(ranked, ((0, 0), (0, depth - ranked.shape[1])), constant_values=-1)


def _keys(pairs: Pairs, n_items: int) -> np.ndarray:
    """Sorted distinct owner * n_items + item keys: set lookups by binary search, no dense matrix."""
    owners, items = (np.asarray(a, np.int64) for a in pairs)
    if owners.shape != items.shape or owners.ndim != 1:
        raise ValueError(f"pairs must be two 1-D arrays of one length, got {owners.shape} and {items.shape}")
    if len(items) and (items.min() < 0 or items.max() >= n_items or owners.min() < 0):
        raise ValueError(f"item indices must be in [0, {n_items}) and owner indices >= 0")
    return np.unique(owners * n_items + items)


def _contains(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(np.shape(queries), bool)
    pos = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return sorted_keys[pos] == queries


def _rows_items(sorted_keys: np.ndarray, owners: np.ndarray, n_items: int) -> Tuple[np.ndarray, np.ndarray]:
    """(batch row, item) of every key belonging to `owners` (the train items to mask)."""
    lo = np.searchsorted(sorted_keys, owners * n_items)
    hi = np.searchsorted(sorted_keys, (owners + 1) * n_items)
    counts = hi - lo
    rows = np.repeat(np.arange(len(owners)), counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    keys = sorted_keys[starts + np.arange(counts.sum())]
    return rows, keys % n_items


def _writable_scores(scores: np.ndarray, n_rows: int, n_items: int) -> np.ndarray:
    """Float scores we may overwrite: copy when `scores_fn` returned a view or ints."""
    scores = np.asarray(scores)
    if scores.shape != (n_rows, n_items):
        raise ValueError(f"scores_fn must return [{n_rows}, {n_items}], got {scores.shape}")
    if not np.issubdtype(scores.dtype, np.floating):
        return scores.astype(np.float64)
    if scores.base is not None or not scores.flags.writeable:
        scores = scores.copy()
    if np.isnan(scores).any():
        raise ValueError("scores_fn returned NaN scores")
    return scores


def _check_ks(ks: Sequence[int]) -> Tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive, got {ks}")
    return ks


def _batches(n: int, size: int) -> Iterator[Tuple[int, int]]:
    size = max(1, int(size))
    for start in range(0, n, size):
        yield start, min(start + size, n)
