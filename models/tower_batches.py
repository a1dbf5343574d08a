"""Owner batches for the towers: each owner's hires split at random into input and targets, anew every epoch.

This is how an owner is served and evaluated: the query is built from the
hires it has (its profile and the bag of those hires), and it is asked for the
ones it has not shown yet. A fresh split per epoch keeps the towers from
learning any one split by heart. The same inputs (`query_inputs`) build the
validation queries, so the towers are scored exactly as they are trained.
"""

from typing import Dict, Iterator, List, Sequence

import numpy as np
import tensorflow as tf

from models import features
from models.model import EXCLUDED, PAIR_ITEM, PAIR_LABEL, PAIR_OWNER, PAIR_WEIGHT
from models.owner_rows import OwnerRows


def query_inputs(owners: OwnerRows, rows: Sequence[int], hire_sets: Sequence[np.ndarray], catalog_features: np.ndarray) -> Dict[str, np.ndarray]:
    """The query tower's inputs for owner `rows`, each from the hires (catalog positions) in `hire_sets`."""
    width = max([1] + [len(h) for h in hire_sets])
    history = np.full((len(rows), width), -1, np.int64)
    profile = np.zeros((len(rows), catalog_features.shape[1]), np.float32)
    counts = np.zeros(len(rows), np.float32)
    for b, (row, hires) in enumerate(zip(rows, hire_sets)):
        if not len(hires):
            continue
        history[b, : len(hires)] = owners.catalog_ids[hires]
        labels = owners.label_totals(row, hires)
        counts[b] = owners.pair_rows(row, hires).sum()
        profile[b] = labels @ catalog_features[hires] / max(counts[b], 1.0)
    return {
        features.OWNER_ID_KEY: owners.owner_ids[np.asarray(rows, np.int64)].reshape(-1, 1),
        features.QUERY_PROFILE_KEY: profile,
        features.OWNER_HISTORY_KEY: history,
        features.OWNER_HISTORY_COUNT_KEY: counts,
    }


def _split(hires: np.ndarray, share: float, rng: np.random.Generator):
    """(input, targets): at least one of each; about `share` of the hires are targets."""
    n = len(hires)
    k = int(min(n - 1, max(1, rng.binomial(n, share))))
    chosen = np.zeros(n, bool)
    chosen[rng.choice(n, k, replace=False)] = True
    return hires[~chosen], hires[chosen]


def batches(owners: OwnerRows, catalog_features: np.ndarray, target_share: float, batch_owners: int, seed: int,
            cold_share: float = 0.0) -> Iterator[Dict[str, np.ndarray]]:
    """One pass over the owners with at least two hires, in a new order and with new splits each call.

    For `cold_share` of them the query keeps only the profile of its inputs, not the hires
    themselves: what a new owner's declared categories and budget give the cold-start query.
    """
    rng = np.random.default_rng(seed)
    eligible = np.flatnonzero(np.diff(owners.hires.indptr) >= 2)
    order = rng.permutation(eligible)
    for start in range(0, len(order), batch_owners):
        rows = order[start : start + batch_owners]
        hires = owners.histories(rows)
        splits = [_split(h, target_share, rng) for h in hires]
        batch = query_inputs(owners, rows, [inputs for inputs, _ in splits], catalog_features)
        cold = rng.random(len(rows)) < cold_share
        batch[features.OWNER_HISTORY_KEY][cold] = -1
        batch[features.OWNER_HISTORY_COUNT_KEY][cold] = 0.0
        pair_owner = np.concatenate([np.full(len(t), b, np.int32) for b, (_, t) in enumerate(splits)])
        pair_item = np.concatenate([t for _, t in splits]).astype(np.int32)
        labels = np.concatenate([owners.mean_labels(row, t) for row, (_, t) in zip(rows, splits)]).astype(np.float32)
        weights = np.concatenate([np.full(len(t), 1.0 / len(t), np.float32) for _, t in splits])
        excluded = np.full((len(rows), max(len(h) for h in hires)), -1, np.int32)
        for b, h in enumerate(hires):
            excluded[b, : len(h)] = h
        batch.update({PAIR_OWNER: pair_owner, PAIR_ITEM: pair_item, PAIR_LABEL: labels, PAIR_WEIGHT: weights, EXCLUDED: excluded})
        yield batch


def signature(feature_width: int) -> Dict[str, tf.TensorSpec]:
    """tf.data's view of a batch."""
    return {
        features.OWNER_ID_KEY: tf.TensorSpec([None, 1], tf.int64),
        features.QUERY_PROFILE_KEY: tf.TensorSpec([None, feature_width], tf.float32),
        features.OWNER_HISTORY_KEY: tf.TensorSpec([None, None], tf.int64),
        features.OWNER_HISTORY_COUNT_KEY: tf.TensorSpec([None], tf.float32),
        PAIR_OWNER: tf.TensorSpec([None], tf.int32),
        PAIR_ITEM: tf.TensorSpec([None], tf.int32),
        PAIR_LABEL: tf.TensorSpec([None], tf.float32),
        PAIR_WEIGHT: tf.TensorSpec([None], tf.float32),
        EXCLUDED: tf.TensorSpec([None, None], tf.int32),
    }


def dataset(owners: OwnerRows, catalog_features: np.ndarray, target_share: float, batch_owners: int, seed: int,
            cold_share: float = 0.0) -> tf.data.Dataset:
    """Endless owner batches (epoch after epoch, each with new splits), built ahead of the training step."""
    def generate() -> Iterator[Dict[str, np.ndarray]]:
        epoch = 0
        while True:
            yield from batches(owners, catalog_features, target_share, batch_owners, seed + epoch, cold_share)
            epoch += 1

    return tf.data.Dataset.from_generator(generate, output_signature=signature(catalog_features.shape[1])).prefetch(2)


def batches_per_pass(owners: OwnerRows, batch_owners: int) -> int:
    eligible = int((np.diff(owners.hires.indptr) >= 2).sum())
    return max(1, -(-eligible // batch_owners))


def validation_inputs(owners: OwnerRows, owner_rows: Sequence[int], catalog_features: np.ndarray) -> List[Dict[str, np.ndarray]]:
    """Query inputs from every known hire of each owner (as served), in chunks."""
    chunks = []
    for start in range(0, len(owner_rows), 1024):
        rows = owner_rows[start : start + 1024]
        chunks.append(query_inputs(owners, rows, owners.histories(rows), catalog_features))
    return chunks
