"""Validation inside the Trainer, on ExampleGen's validation split.

Its rows are train owners' rows that neither Transform's analysis (owner
profiles and hire tables) nor training saw, so each is scored exactly as the
owner is served: the query from its known hires, those hires excluded from
the ranking, and the row's influencer the one right answer (hit rate, i.e.
recall with one relevant item, and NDCG at k). The eval split stays the gate's.
"""

import math
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from models import features, progress
from models.topk import exact_top_k

MAX_VALIDATION_ROWS = 5000  # enough for a stable signal, cheap to score every epoch
METRIC = "recall@10"
K = 10
# Training schedule from the data size: batches near 1/200 of the rows (within
# [MIN_BATCH, the configured cap]), and epochs until early stopping, at most
# MAX_EPOCHS and at most ROW_BUDGET rows in all (about 6 minutes on 2 cores):
# a 6,000-row export gets 40 epochs, a 400,000-row one 8.
MIN_BATCH, ROW_BUDGET, MIN_EPOCHS, MAX_EPOCHS = 128, 3_000_000, 3, 40


def schedule(n_rows: int, max_batch: int, max_epochs: Optional[int] = None) -> Tuple[int, int]:
    """(batch size, most epochs) for `n_rows` training rows; early stopping usually ends sooner."""
    batch = 2 ** round(math.log2(max(1.0, n_rows / 200)))
    batch = int(min(max_batch, max(MIN_BATCH, batch)))
    epochs = max_epochs or int(min(MAX_EPOCHS, max(MIN_EPOCHS, ROW_BUDGET // max(1, n_rows))))
    return batch, epochs


def row_metrics(queries: np.ndarray, embeddings: np.ndarray, targets: np.ndarray, exclude: Sequence[np.ndarray], k: int = K) -> Dict[str, float]:
    """Hit rate (recall with one relevant item) and NDCG at k of each row's target catalog position."""
    if len(targets) == 0:  # no validation rows (a tiny export): no signal, nothing preferred
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0}
    positions, _ = exact_top_k(queries, embeddings, k, exclude)
    hit = positions == targets[:, None]
    rank = np.argmax(hit, axis=1)
    found = hit.any(axis=1)
    return {f"recall@{k}": float(found.mean()), f"ndcg@{k}": float(np.where(found, 1.0 / np.log2(rank + 2.0), 0.0).mean())}


class ValidationSet:
    """The validation rows as the scorer needs them: towers' inputs, targets and exclusions."""

    def __init__(self, batches: Sequence[Dict[str, tf.Tensor]], catalog_position):
        self.batches = list(batches)
        ids = np.concatenate([b[features.INFLUENCER_ID_KEY].numpy().reshape(-1) for b in self.batches]) if self.batches else np.zeros([0], np.int64)
        self.targets = catalog_position(ids)
        self.histories = []
        for batch in self.batches:
            for row in tf.RaggedTensor.from_sparse(batch[features.OWNER_HISTORY_KEY]).to_list():
                positions = catalog_position(np.asarray(row, np.int64))
                self.histories.append(positions[positions >= 0])
        self.size = len(self.targets)

    def tower_queries(self, query_tower) -> np.ndarray:
        return np.concatenate([query_tower(b).numpy() for b in self.batches]) if self.batches else np.zeros([0, 1], np.float32)


class BestEpoch(tf.keras.callbacks.Callback):
    """Scores the validation rows after every epoch; keeps the best weights and stops after `patience` epochs without gain.

    Each epoch is reported as a progress line with the time left if training ran all `max_epochs`.
    """

    def __init__(self, score_fn, patience: int, max_epochs: int, log=progress.report):
        super().__init__()
        self._score, self._patience, self._max_epochs, self._log = score_fn, patience, max_epochs, log
        self.history, self.best_epoch, self._best, self._weights, self._since = [], -1, -np.inf, None, 0
        self._started = time.monotonic()

    def on_train_begin(self, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        metrics = self._score()
        self.history.append({"epoch": epoch + 1, **metrics, **{k: float(v) for k, v in (logs or {}).items()}})
        if metrics[METRIC] > self._best:
            self._best, self.best_epoch, self._weights, self._since = metrics[METRIC], epoch + 1, self.model.get_weights(), 0
        else:
            self._since += 1
            if self._since >= self._patience:
                self.model.stop_training = True
        per_epoch = (time.monotonic() - self._started) / (epoch + 1)
        left = per_epoch * (self._max_epochs - epoch - 1)
        self._log(
            "Trainer: epoch %d/%d, loss %.4f, validation %s %.4f (best %.4f, epoch %d); %s per epoch%s",
            epoch + 1, self._max_epochs, float((logs or {}).get("loss", float("nan"))), METRIC, metrics[METRIC], self._best, self.best_epoch,
            progress.duration(per_epoch),
            ", stopping early" if self.model.stop_training else f", at most {progress.duration(left)} to go" if left else "",
        )

    def restore_best(self) -> None:
        if self._weights is not None:
            self.model.set_weights(self._weights)
