"""History rows as the Trainer holds them: three numbers a row, grouped by owner, never per-row feature vectors.

A row is (owner id, influencer id, combined rating); what an owner's rows say
about it (the profile, its hires) is computed from the catalog's transformed
features through a sparse owner x catalog matrix, so memory grows with the rows
by 16 bytes each and with the catalog by its feature width.
"""

import dataclasses
from typing import Callable, Dict, List, Sequence

import numpy as np
import tensorflow as tf
from scipy import sparse
from tfx_bsl.public import tfxio

from models import features
from models.retrieval_metrics import lookup

READ_BATCH = 8192


@dataclasses.dataclass(frozen=True)
class Rows:
    """History rows of one or more splits."""

    owner_ids: np.ndarray  # int64 [N]
    influencer_ids: np.ndarray  # int64 [N]
    labels: np.ndarray  # float32 [N], Transform's combined rating

    def __len__(self) -> int:
        return len(self.owner_ids)

    def __add__(self, other: "Rows") -> "Rows":
        return Rows(*(np.concatenate([a, b]) for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


def read_rows(files: List[str], data_accessor, raw_schema, label_fn: Callable[[Dict[str, tf.Tensor]], tf.Tensor]) -> Rows:
    """The rows of a split of raw interaction examples, their label from Transform's own graph (`label_fn`),
    sorted by owner, influencer and label: the same rows give the same model whatever order Beam wrote them in."""
    dataset = data_accessor.tf_dataset_factory(files, tfxio.TensorFlowDatasetOptions(batch_size=READ_BATCH, num_epochs=1), raw_schema)
    owners, influencers, labels = [np.zeros([0], np.int64)], [np.zeros([0], np.int64)], [np.zeros([0], np.float32)]
    for raw in dataset:
        owners.append(raw[features.OWNER_ID].numpy().reshape(-1).astype(np.int64))
        influencers.append(raw[features.INFLUENCER_ID].numpy().reshape(-1).astype(np.int64))
        labels.append(label_fn(raw).numpy().reshape(-1).astype(np.float32))
    owners, influencers, labels = np.concatenate(owners), np.concatenate(influencers), np.concatenate(labels)
    order = np.lexsort((labels, influencers, owners))
    return Rows(owners[order], influencers[order], labels[order])


class OwnerRows:
    """Rows grouped by owner over catalog positions (rows whose influencer is not in the catalog are left out).

    Per (owner, hired influencer) pair, in owner then catalog order: the number of rows and their summed labels.
    """

    def __init__(self, rows: Rows, catalog_ids: np.ndarray, owner_ids: np.ndarray = None):
        self.catalog_ids = np.asarray(catalog_ids, np.int64)
        n_items = len(self.catalog_ids)
        positions = lookup(rows.influencer_ids, self.catalog_ids)
        known = positions >= 0
        self.owner_ids = np.unique(rows.owner_ids[known]) if owner_ids is None else np.asarray(owner_ids, np.int64)
        owner_index = lookup(rows.owner_ids, self.owner_ids)
        keep = known & (owner_index >= 0)
        pairs, inverse = np.unique(owner_index[keep] * n_items + positions[keep], return_inverse=True)
        self._pair_rows = np.bincount(inverse, minlength=len(pairs)).astype(np.float32)
        self._pair_labels = np.bincount(inverse, weights=rows.labels[keep], minlength=len(pairs)).astype(np.float32)
        indices = (pairs % n_items).astype(np.int32)
        indptr = np.searchsorted(pairs // n_items, np.arange(len(self.owner_ids) + 1)).astype(np.int64)
        shape = (len(self.owner_ids), n_items)
        self.hires = sparse.csr_matrix((np.ones(len(pairs), np.float32), indices, indptr), shape=shape)  # binary: the distinct hires
        self.label_sums = sparse.csr_matrix((self._pair_labels, indices, indptr), shape=shape)
        self.row_counts = np.bincount(pairs // n_items, weights=self._pair_rows, minlength=len(self.owner_ids)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.owner_ids)

    def hire_positions(self, owner: int) -> np.ndarray:
        return self.hires.indices[self.hires.indptr[owner] : self.hires.indptr[owner + 1]]

    def histories(self, owners: Sequence[int]) -> List[np.ndarray]:
        return [self.hire_positions(int(o)) for o in owners]

    def _pair_slots(self, owner: int, positions: np.ndarray) -> np.ndarray:
        start, stop = self.hires.indptr[owner], self.hires.indptr[owner + 1]
        return start + np.searchsorted(self.hires.indices[start:stop], positions)

    def pair_rows(self, owner: int, positions: np.ndarray) -> np.ndarray:
        """Rows behind each of the owner's hires at `positions` (which must be hires)."""
        return self._pair_rows[self._pair_slots(owner, positions)]

    def label_totals(self, owner: int, positions: np.ndarray) -> np.ndarray:
        return self._pair_labels[self._pair_slots(owner, positions)]

    def mean_labels(self, owner: int, positions: np.ndarray) -> np.ndarray:
        slots = self._pair_slots(owner, positions)
        return self._pair_labels[slots] / self._pair_rows[slots]

    def profiles(self, catalog_features: np.ndarray) -> np.ndarray:
        """[owners, F]: the mean over each owner's rows of influencer features * label (Transform's owner profile)."""
        sums = np.asarray(self.label_sums @ np.asarray(catalog_features, np.float64))
        return (sums / np.maximum(self.row_counts, 1.0)[:, None]).astype(np.float32)

    def index_of(self, owner_ids: np.ndarray) -> np.ndarray:
        return lookup(np.asarray(owner_ids, np.int64), self.owner_ids)
