"""The served ranking: the trained towers' score blended with the closed-form item factors.

score(owner, j) = tower_weight * <tower query, tower candidate j>
                + item_weight  * <sum of the owner's hires' item query vectors, item candidate j>

is one dot product of concatenated vectors, so the stock model, ScaNN and
batch scoring serve it unchanged. Lambda and the blend are chosen on the
Trainer's validation rows; each part is first divided by the spread of its
scores so the blend weight means the same on every dataset.
"""

import dataclasses
from typing import Dict, List, Sequence

import numpy as np

from models import item_factors
from models.validation import METRIC, ValidationSet, row_metrics

BLEND_WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))  # share of the towers' score


@dataclasses.dataclass
class Blend:
    tower_weight: float
    item_weight: float
    tower_share: float
    lam: float
    tried: List[Dict] = dataclasses.field(default_factory=list)


def _spread(queries: np.ndarray, candidates: np.ndarray) -> float:
    sample = queries[:256] @ candidates.T
    return float(sample.std()) or 1.0


def tune(
    spectrum: item_factors.Spectrum, tower_queries: np.ndarray, tower_candidates: np.ndarray, validation: ValidationSet,
    lambdas: Sequence[float] = item_factors.LAMBDAS,
) -> Blend:
    """Lambda for the item factors alone, then the blend weight, both by METRIC on the validation rows."""
    tried = []
    best_lam, best = None, -1.0
    for lam in lambdas:
        factors = item_factors.factors(spectrum, lam)
        metrics = row_metrics(item_factors.history_queries(factors, validation.histories), factors.candidate, validation.targets, validation.histories)
        tried.append({"part": "item factors", "lambda": lam, **metrics})
        if metrics[METRIC] > best:
            best_lam, best = lam, metrics[METRIC]
    factors = item_factors.factors(spectrum, best_lam)
    item_queries = item_factors.history_queries(factors, validation.histories)
    tower_spread, item_spread = _spread(tower_queries, tower_candidates), _spread(item_queries, factors.candidate)
    candidates = np.concatenate([tower_candidates, factors.candidate], axis=1)
    best_share, best = None, -1.0
    for share in BLEND_WEIGHTS:
        queries = np.concatenate([share / tower_spread * tower_queries, (1.0 - share) / item_spread * item_queries], axis=1)
        metrics = row_metrics(queries, candidates, validation.targets, validation.histories)
        tried.append({"part": "blend", "tower_share": share, "lambda": best_lam, **metrics})
        if metrics[METRIC] > best:
            best_share, best = share, metrics[METRIC]
    return Blend(best_share / tower_spread, (1.0 - best_share) / item_spread, best_share, best_lam, tried)
