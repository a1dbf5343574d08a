"""Validation inside the Trainer, on ExampleGen's validation split.

Its rows are train owners' rows that neither Transform's analysis (owner
profiles and hire tables) nor training saw, so each is scored exactly as the
owner is served: the query from its train hires, those hires excluded from
the ranking, and the row's influencer the one right answer (hit rate, i.e.
recall with one relevant item, and NDCG at k). The eval split stays the gate's.
"""

import time
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from models import progress, tower_batches
from models.model import LOSS_PER_OWNER
from models.owner_rows import OwnerRows, Rows
from models.retrieval_metrics import lookup
from models.topk import exact_top_k

# Every choice on these rows (penalty, epoch, blend) is between candidates a fraction of a percent apart, and
# 5,000 rows leave the hit rate a standard error of about 3% of itself; rows are scored once per owner, so
# many rows cost what their owners cost.
MAX_VALIDATION_ROWS = 200_000
# ...but an owner costs a ranking of the whole catalog, a few dozen times a run (penalties, epochs, blends):
# at most this many owner x catalog scores per ranking, about 30 times anime's (4,700 owners x 7,400
# influencers, 1.1 s an epoch's blend), owners sampled whole, and never fewer than MIN_VALIDATION_OWNERS.
MAX_SCORED_CELLS, MIN_VALIDATION_OWNERS = 2**30, 1_000
METRIC = "recall@10"
K = 10
# Training schedule from the data size. A step scores its target pairs against the softmax's
# candidates; batches hold at most STEP_CELLS such scores (about 130 MB of logits), and training
# stops at CELL_BUDGET scores in all (about two minutes on 2 cores at anime's catalog), at most
# MAX_EPOCHS passes and at least MIN_EPOCHS, unless early stopping ends it first. Where even
# MIN_EPOCHS passes would exceed the budget (millions of rows), an epoch covers only part of a
# pass (the owner stream goes on where the last epoch stopped): the towers' time then follows the
# budget, not the rows, while the item factors still see every row.
STEP_CELLS, CELL_BUDGET, MIN_BATCH, MIN_EPOCHS, MAX_EPOCHS = 2**25, 1.2e10, 16, 2, 60


class Schedule(NamedTuple):
    batch_owners: int
    max_epochs: int
    epoch_share: float  # of a pass over the owners, per epoch (1.0 unless the budget cuts it)


def schedule(n_owners: int, n_pairs: float, softmax_width: int, max_batch: int, max_epochs: Optional[int] = None) -> Schedule:
    """Owners per batch, most epochs and the share of a pass an epoch covers, for `n_pairs` target pairs a pass over `n_owners` owners."""
    per_owner = max(1.0, n_pairs / max(1, n_owners))
    # A pair's logits: its positive and the softmax's candidates (models.model.softmax_loss).
    batch = int(min(max_batch, max(MIN_BATCH, STEP_CELLS // (per_owner * (softmax_width + 1)))))
    pass_cells = max(1.0, n_pairs * softmax_width)
    epochs = max_epochs or int(min(MAX_EPOCHS, max(MIN_EPOCHS, CELL_BUDGET // pass_cells)))
    return Schedule(batch, epochs, min(1.0, CELL_BUDGET / (epochs * pass_cells)))


def row_metrics(queries: np.ndarray, embeddings: np.ndarray, targets: np.ndarray, exclude: Sequence[np.ndarray], k: int = K) -> Dict[str, float]:
    """Hit rate (recall with one relevant item) and NDCG at k of each row's target catalog position."""
    if len(targets) == 0:  # no validation rows (a tiny export): no signal, nothing preferred
        return position_metrics(np.zeros((0, k), np.int64), targets, k)
    return position_metrics(exact_top_k(queries, embeddings, k, exclude)[0], targets, k)


def position_metrics(positions: np.ndarray, targets: np.ndarray, k: int = K) -> Dict[str, float]:
    """Hit rate and NDCG at k of each row's target, from each row's best catalog positions (at most k, best first)."""
    if len(targets) == 0:
        return {f"recall@{k}": 0.0, f"ndcg@{k}": 0.0}
    hit = positions == targets[:, None]
    rank = np.argmax(hit, axis=1)
    found = hit.any(axis=1)
    return {f"recall@{k}": float(found.mean()), f"ndcg@{k}": float(np.where(found, 1.0 / np.log2(rank + 2.0), 0.0).mean())}


class ValidationSet:
    """The validation rows as the scorer needs them: the towers' inputs, targets and exclusions.

    Only rows of owners with train hires whose influencer is in the catalog and not already
    one of those hires: the rows a served owner could be asked about. Seeded samples keep the
    rankings within `max_cells` (whole owners) and the rows within `max_rows`.
    """

    def __init__(self, owners: OwnerRows, rows: Rows, catalog_features: np.ndarray, seed: int = 0, max_rows: int = MAX_VALIDATION_ROWS,
                 max_cells: int = MAX_SCORED_CELLS):
        targets = lookup(rows.influencer_ids, owners.catalog_ids)
        owner_rows = owners.index_of(rows.owner_ids)
        usable = np.flatnonzero((targets >= 0) & (owner_rows >= 0))
        if len(usable):
            usable = usable[np.asarray(owners.hires[owner_rows[usable], targets[usable]]).ravel() == 0]
        candidates = np.unique(owner_rows[usable])
        max_owners = max(MIN_VALIDATION_OWNERS, max_cells // max(1, len(owners.catalog_ids)))
        if len(candidates) > max_owners:
            kept = np.random.default_rng(seed).choice(candidates, max_owners, replace=False)
            usable = usable[np.isin(owner_rows[usable], kept)]
        if len(usable) > max_rows:
            usable = np.sort(np.random.default_rng(seed).choice(usable, max_rows, replace=False))
        self.targets = targets[usable]
        self.labels = np.asarray(rows.labels, np.float32)[usable]
        self.owner_rows = owner_rows[usable]
        self._distinct, self._row_of = np.unique(self.owner_rows, return_inverse=True)
        self._inputs = tower_batches.validation_inputs(owners, self._distinct, catalog_features)
        self.owner_histories = owners.histories(self._distinct)  # per distinct owner, in the order of owner_metrics' queries
        self.size = len(self.targets)

    def owner_metrics(self, owner_queries: np.ndarray, candidates: np.ndarray, k: int = K) -> Dict[str, float]:
        """row_metrics from one query per distinct owner (`owner_histories`' order): every row of an owner
        shares its ranking, so the cost grows with the owners, not the rows."""
        if not self.size:
            return position_metrics(np.zeros((0, k), np.int64), self.targets, k)
        return self.owner_position_metrics(exact_top_k(owner_queries, candidates, k, self.owner_histories)[0], k)

    def owner_position_metrics(self, owner_positions: np.ndarray, k: int = K) -> Dict[str, float]:
        """position_metrics of every row from its owner's best catalog positions (`owner_histories`' order)."""
        return position_metrics(owner_positions[self.row_owner], self.targets, k)

    @property
    def row_owner(self) -> np.ndarray:
        """Each row's owner, as an index into `owner_histories`."""
        return self._row_of

    def tower_queries(self, query_tower) -> np.ndarray:
        """The query tower's vector of each distinct owner (`owner_histories`' order)."""
        if not self.size:
            return np.zeros([0, 1], np.float32)
        return np.concatenate([query_tower({k: tf.constant(v) for k, v in chunk.items()}).numpy() for chunk in self._inputs])


def rating_calibration(predictions: np.ndarray, labels: np.ndarray) -> Tuple[float, float]:
    """(offset, scale) of the least-squares line from the rating head's predictions to the labels, scale >= 0.

    The head is trained on a few target pairs a pass beside the retrieval loss, so its raw output can be
    noisier than the mean rating; the line fitted on rows it never saw keeps what signal it has and
    shrinks the rest to the mean (scale 0: the mean rating). No rows: the head as it is.
    """
    if len(labels) < 2:
        return 0.0, 1.0
    x, y = np.asarray(predictions, np.float64), np.asarray(labels, np.float64)
    spread = float(np.var(x)) if np.ptp(x) > 0 else 0.0  # a constant head: its variance is only rounding
    scale = max(0.0, float(np.mean((x - x.mean()) * (y - y.mean()))) / spread) if spread > 0 else 0.0
    return float(y.mean() - scale * x.mean()), scale


# Progress is judged on the mean of the last few epochs' METRIC. A slow climb hides in the noise of one
# epoch: on Last.fm, epoch 9 of seed 0 came out 2 validation rows (of 7,511) above epochs 10-14 while the
# blend still climbed, and training stopped at epoch 14 instead of 23 (BENCHMARKS Round 15). The mean of 3
# epochs has 1/sqrt(3) of one epoch's noise (as far as the epochs' noise is independent), so a steady trend
# shows through it sooner; it costs up to 2 epochs more after a true peak.
SMOOTHED_EPOCHS = 3


class BestEpoch(tf.keras.callbacks.Callback):
    """Scores the validation rows after every epoch; keeps the best weights and stops after `patience` epochs without gain.

    The weights kept are the epoch with the best METRIC (the served blend's); gain is measured on its
    mean over the last SMOOTHED_EPOCHS epochs. When the scores also carry
    `towers_alone` and the blend gives the towers a share of 0, the towers' own gain counts as progress:
    towers still learning may complement the item factors later (on Last.fm, stopping on the blend alone
    left one seed's towers at a share of 0 after 6 epochs, where they had earned 0.6-0.8 before). Once
    they carry a share the blend alone decides: on anime the towers alone kept gaining until epoch 21
    while the blend had stopped at epoch 3, three times the training for the same served score.
    Each epoch is reported as a progress line with the time left if training ran all `max_epochs`,
    from the epochs after the first (which includes tracing the step).
    """

    def __init__(self, score_fn, patience: int, max_epochs: int, log=progress.report):
        super().__init__()
        self._score, self._patience, self._max_epochs, self._log = score_fn, patience, max_epochs, log
        self.history, self.best_epoch, self._best, self._weights, self._since = [], -1, -np.inf, None, 0
        self._best_alone, self._best_smoothed = -np.inf, -np.inf
        self._ends = []

    def on_train_begin(self, logs=None):
        self._ends = [time.monotonic()]

    def on_epoch_end(self, epoch, logs=None):
        metrics = self._score()
        self.history.append({"epoch": epoch + 1, **metrics, **{k: float(v) for k, v in (logs or {}).items()}})
        alone = metrics.get("towers_alone", -np.inf)
        # The blend measures the towers' value once they carry a share; while it gives them none, it
        # cannot see them learn, so only then do their gains alone count as progress.
        unseen = metrics.get("tower_share", 0.0) == 0.0
        smoothed = float(np.mean([h[METRIC] for h in self.history[-SMOOTHED_EPOCHS:]]))
        progressed = smoothed > self._best_smoothed or (unseen and alone > self._best_alone)
        self._best_alone, self._best_smoothed = max(self._best_alone, alone), max(self._best_smoothed, smoothed)
        if metrics[METRIC] > self._best:
            self._best, self.best_epoch, self._weights = metrics[METRIC], epoch + 1, self.model.get_weights()
        self._since = 0 if progressed else self._since + 1
        if self._since >= self._patience:
            self.model.stop_training = True
        self._ends.append(time.monotonic())
        took = np.diff(self._ends)
        per_epoch = float(np.median(took[1:]) if len(took) > 1 else took[0])
        left = per_epoch * (self._max_epochs - epoch - 1)
        blend = f", towers' share {metrics['tower_share']:.2f}, towers alone {metrics['towers_alone']:.4f}" if "tower_share" in metrics else ""
        self._log(
            "Trainer: epoch %d/%d, loss %.4f per owner, validation %s %.4f%s (best %.4f, epoch %d); %s per epoch%s",
            epoch + 1, self._max_epochs, float((logs or {}).get(LOSS_PER_OWNER, float("nan"))), METRIC, metrics[METRIC], blend, self._best, self.best_epoch,
            progress.duration(per_epoch),
            ", stopping early" if self.model.stop_training
            else "" if not left
            else ", time left known after epoch 2 (epoch 1 includes tracing)" if len(took) == 1
            else f", at most {progress.duration(left)} to go",
        )

    def restore_best(self) -> None:
        if self._weights is not None:
            self.model.set_weights(self._weights)
