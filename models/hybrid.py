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
from typing import Dict, List

import numpy as np

from models import item_factors
from models.validation import METRIC, ValidationSet, row_metrics

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
    return float(sample.std()) or 1.0


def tune(factors: item_factors.ItemFactors, tower_queries: np.ndarray, tower_candidates: np.ndarray, validation: ValidationSet) -> Blend:
    """The blend weight of towers and item factors by METRIC on the validation rows (ties: fewer towers)."""
    item_queries = item_factors.history_queries(factors, validation.histories)
    tower_spread, item_spread = _spread(tower_queries, tower_candidates), _spread(item_queries, factors.candidate)
    candidates = np.concatenate([tower_candidates, factors.candidate], axis=1)
    tried, best_share, best = [], None, -1.0
    for share in BLEND_WEIGHTS:
        queries = np.concatenate([share / tower_spread * tower_queries, (1.0 - share) / item_spread * item_queries], axis=1)
        metrics = row_metrics(queries, candidates, validation.targets, validation.histories)
        tried.append({"tower_share": share, **metrics})
        if metrics[METRIC] > best:
            best_share, best = share, metrics[METRIC]
    return Blend(best_share / tower_spread, (1.0 - best_share) / item_spread, best_share, tried)
