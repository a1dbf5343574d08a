"""Retrieval recall@10 by owner history size and by influencer popularity: where a model wins or loses.

Both bucketings come from the known (train) rows alone, so every model scored on
one split (this run's, the last blessed one, most-popular) is sliced the same way:

- owners by their number of distinct known hires, at fixed edges (HISTORY_EDGES) so
  that slices of two runs compare;
- influencers by popularity: ranked by known hires, each falls in the third of the
  cumulative known hires where the middle of its own hires lies (head, middle, tail),
  and those never hired in the known rows, where co-occurrence has nothing to go on,
  are a bucket of their own.

An owner bucket's recall@10 is the mean over its owners; a popularity bucket's is
the mean, over the owners with held-out hires in it, of the share of those hires in
the owner's top 10 (min(10, their number) at most), from the one whole-catalog ranking.
"""

from typing import Dict, List

import numpy as np

from models.retrieval_metrics import BY_ITEM_GROUP, Pairs

K = 10
HISTORY_EDGES = (5, 20, 100)  # distinct known hires: none, 1-4, 5-19, 20-99, 100 or more
POPULARITY_LABELS = ("head: first third of the known hires", "middle third", "tail: last third", "never hired in the known rows")
OUTSIDE_CATALOG = "not in the catalog"  # a row's influencer the model's catalog lacks (TFMA slices rows, not rankings)
OWNER_HISTORY, INFLUENCER_POPULARITY = "owner history", "influencer popularity"


def history_labels() -> List[str]:
    low = (1, *HISTORY_EDGES)
    return ["no known hires", *[f"{a}-{b - 1} hires" for a, b in zip(low, HISTORY_EDGES)], f"{HISTORY_EDGES[-1]}+ hires"]


def owner_history_groups(train_pairs: Pairs, owners: np.ndarray) -> np.ndarray:
    """The history bucket (index into history_labels()) of each owner: its distinct known hires."""
    train_owners, train_items = (np.asarray(a, np.int64) for a in train_pairs)
    distinct = np.unique(np.stack([train_owners, train_items]), axis=1)[0] if len(train_owners) else train_owners
    counts = np.bincount(distinct, minlength=int(np.max(owners, initial=-1)) + 1)
    counts = counts[np.asarray(owners, np.int64)]
    return np.where(counts == 0, 0, np.digitize(counts, HISTORY_EDGES) + 1)


def popularity_groups(train_pairs: Pairs, n_items: int) -> np.ndarray:
    """The popularity bucket (index into POPULARITY_LABELS) of each item, from its known hires (distinct owner-item pairs)."""
    owners, items = (np.asarray(a, np.int64) for a in train_pairs)
    distinct = np.unique(owners * n_items + items) % n_items if len(items) else items
    return groups_of_hire_counts(np.bincount(distinct, minlength=n_items)[:n_items])


def groups_of_hire_counts(counts: np.ndarray) -> np.ndarray:
    """popularity_groups from each item's number of distinct known hires (the served model's own tables give these)."""
    counts = np.asarray(counts, np.int64)
    n_items = len(counts)
    order = np.argsort(-counts, kind="stable")  # most hired first, ties by item index
    # Where the middle of each item's hires falls in the cumulative share, so one heavy item is not split.
    middle = np.cumsum(counts[order]) - counts[order] / 2
    share = middle / max(int(counts.sum()), 1)
    groups = np.empty(n_items, np.int64)
    groups[order] = np.minimum((share * 3).astype(np.int64), 2)
    groups[counts == 0] = 3
    return groups


def sliced_recall(per_owner: Dict[str, np.ndarray], train_pairs: Pairs) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{OWNER_HISTORY: {label: {"owners", "recall@10"}}, INFLUENCER_POPULARITY: {...}} from per_owner_rankings'
    output (called with item_groups=popularity_groups(...)); buckets without owners are left out."""
    owners, recall = per_owner["owners"], per_owner[f"recall@{K}"]
    history = owner_history_groups(train_pairs, owners) if len(owners) else np.zeros([0], np.int64)
    by_history = {label: {"owners": int((history == g).sum()), f"recall@{K}": float(recall[history == g].mean())}
                  for g, label in enumerate(history_labels()) if (history == g).any()}
    grouped = per_owner[f"recall@{K}{BY_ITEM_GROUP}"]
    by_popularity = {}
    for g, label in enumerate(POPULARITY_LABELS):
        column = grouped[:, g] if g < grouped.shape[1] else np.zeros([0])
        seen = column[~np.isnan(column)]
        if len(seen):
            by_popularity[label] = {"owners": int(len(seen)), f"recall@{K}": float(seen.mean())}
    return {OWNER_HISTORY: by_history, INFLUENCER_POPULARITY: by_popularity}
