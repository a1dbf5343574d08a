"""The served ranking: the trained towers' score blended with the closed-form item factors.

score(owner, j) = tower_weight * <tower query, tower candidate j>
                + item_weight  * <sum of the owner's hires' item query vectors, item candidate j>

is one dot product of concatenated vectors, so the stock model, ScaNN and
batch scoring serve it unchanged. The item factors' penalty
(models/item_factors.tune) and the blend are chosen on the Trainer's
validation rows; each part is first divided by the spread of its scores so the
blend weight means the same on every dataset.
"""

import dataclasses
from typing import Dict, List, Tuple

import numpy as np

from models import item_factors
from models.topk import top_k
from models.validation import K, METRIC, ValidationSet

# Shares of the towers' score tried, finer where the blends measured so far landed (0.1 to 0.4).
BLEND_WEIGHTS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclasses.dataclass
class Blend:
    tower_weight: float
    item_weight: float
    tower_share: float
    tried: List[Dict] = dataclasses.field(default_factory=list)

    def metrics(self, share: float) -> Dict[str, float]:
        """The validation metrics at one tower share (0: the item factors alone, the ablation)."""
        return next(t for t in self.tried if t["tower_share"] == share)


def _spread(queries: np.ndarray, candidates: np.ndarray) -> float:
    sample = queries[:256] @ candidates.T
    return (float(sample.std()) if sample.size else 0.0) or 1.0  # no rows, or one score for all: unscaled


# The coarser grid scored after every training epoch (early stopping on what is served).
EPOCH_BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
# Item-factor scores of the validation owners are kept between epochs up to this many cells (512 MiB).
MAX_CACHED_CELLS = 2**27
_CHUNK_CELLS = 2**24


class BlendSearch:
    """The validation metric of each tower share, for towers that change every epoch and item factors that do not.

    Each share's ranking is share / s_t * towers + (1 - share) / s_i * item factors, the served
    dot product of concatenated vectors, ranked once per validation owner (its rows share the
    ranking), a chunk of owners at a time; `tune` takes the towers' vector of each owner. The
    item factors' scores are computed once and kept while they fit MAX_CACHED_CELLS.
    """

    def __init__(self, factors: item_factors.ItemFactors, validation: ValidationSet):
        self._factors, self._rows = factors, validation
        self._item_queries = item_factors.history_queries(factors, validation.owner_histories)
        self._item_spread = _spread(self._item_queries, factors.candidate)
        n_items = len(factors.candidate)
        self._step = max(1, _CHUNK_CELLS // max(1, n_items))
        self._cache = {} if len(self._item_queries) * n_items <= MAX_CACHED_CELLS else None
        self._banned_cells: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}

    def _item_scores(self, start: int) -> np.ndarray:
        if self._cache is not None and start in self._cache:
            return self._cache[start]
        scores = self._item_queries[start : start + self._step] @ self._factors.candidate.T / self._item_spread
        if self._cache is not None:
            self._cache[start] = scores
        return scores

    def _banned(self, start: int) -> Tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the chunk at `start`: each owner's hires, excluded from its ranking."""
        if start not in self._banned_cells:
            histories = self._rows.owner_histories[start : start + self._step]
            rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
            columns = np.concatenate([np.asarray(h, np.int64) for h in histories]) if histories else np.zeros(0, np.int64)
            self._banned_cells[start] = (rows, columns)
        return self._banned_cells[start]

    def tune(self, tower_queries: np.ndarray, tower_candidates: np.ndarray, shares=BLEND_WEIGHTS) -> Blend:
        """The share with the best METRIC (ties: fewer towers), and every share's metrics."""
        rows = self._rows
        tower_spread = _spread(tower_queries, tower_candidates)
        k = min(K, len(tower_candidates))
        n_owners = len(self._item_queries)
        positions = {share: np.empty((n_owners, k), np.int64) for share in shares}
        for start in range(0, n_owners, self._step):
            towers = tower_queries[start : start + self._step] @ tower_candidates.T / tower_spread
            items = self._item_scores(start)
            banned = self._banned(start)
            scores, item_part = np.empty_like(items), np.empty_like(items)
            for share in shares:  # share * towers + (1 - share) * items, without a new matrix per share
                np.multiply(towers, share, out=scores)
                scores += np.multiply(items, 1.0 - share, out=item_part)
                scores[banned] = -np.inf
                positions[share][start : start + len(scores)] = top_k(scores, k)
        tried, best_share, best = [], None, -1.0
        for share in shares:
            metrics = rows.owner_position_metrics(positions[share])
            tried.append({"tower_share": share, **metrics})
            if metrics[METRIC] > best:
                best_share, best = share, metrics[METRIC]
        return Blend(best_share / tower_spread, (1.0 - best_share) / self._item_spread, best_share, tried)


def tune(factors: item_factors.ItemFactors, tower_queries: np.ndarray, tower_candidates: np.ndarray, validation: ValidationSet) -> Blend:
    """The blend weight of towers and item factors by METRIC on the validation rows (ties: fewer towers)."""
    return BlendSearch(factors, validation).tune(tower_queries, tower_candidates)
