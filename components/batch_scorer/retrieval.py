"""Top-K for batches of query embeddings: ScaNN candidates or exact scores, past hires dropped.

The catalog (ids, embeddings) is read from the stock model's checkpoint and the
ScaNN index loaded once per worker process, shared by its threads
(apache_beam.utils.shared). ScaNN over-fetches candidates; when dropping an
owner's hires leaves fewer than k, that owner is scored exactly instead, so
results never come up short.
"""

import json
import logging
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from models.index import INDEX_REPORT, SCANN_SUBDIR
from models.topk import drop_excluded, exact_top_k
from models.serving import EMBEDDING_KEY, IDS_KEY, SCORE_KEY
from components.batch_scorer.records import INFERENCE_FAILED, METRICS_NAMESPACE, RETRIEVAL_FAILED, UNKNOWN_OWNER, dead_letter, scored_row
from components.batch_scorer import progress
from components.batch_scorer.inference import release_at_exit

SEARCH_SIGNATURE = "search"
# One handle per process (not per DoFn): every thread and pipeline of a worker shares one catalog and index per
# (version, mode); Shared frees them once no DoFn holds them.
_SHARED = shared.Shared()
_CHECKPOINT_KEY = "{}/.ATTRIBUTES/VARIABLE_VALUE"


def load_catalog(version_dir: str) -> Tuple[np.ndarray, np.ndarray]:
    """(catalog_ids [N], catalog_embeddings [N, D]) from the stock model's variables, without building its graph."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(version_dir, "variables", "variables"))
    ids = reader.get_tensor(_CHECKPOINT_KEY.format("catalog_ids")).astype(np.int64)
    embeddings = reader.get_tensor(_CHECKPOINT_KEY.format("catalog_embeddings")).astype(np.float32)
    return ids, embeddings


def index_fetch(version_dir: str) -> Optional[int]:
    """How many candidates the ScaNN index returns per query (from its report); None if unknown."""
    from apache_beam.io.filesystems import FileSystems

    path = os.path.join(version_dir, "assets.extra", INDEX_REPORT)
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as handle:
        return int(json.loads(handle.read().decode())["fetch"])


class Retriever:
    """One worker's catalog and (optionally) ScaNN index; thread-safe to call."""

    def __init__(self, version_dir: str, brute_force: bool):
        self.ids, self.embeddings = load_catalog(version_dir)
        self.position = {int(i): n for n, i in enumerate(self.ids)}
        self._search = None
        if not brute_force:
            import scann  # noqa: F401  Registers the Scann ops the index needs.
            import tensorflow as tf

            self._tf = tf
            self._scann = tf.saved_model.load(os.path.join(version_dir, SCANN_SUBDIR))
            self._search = self._scann.signatures[SEARCH_SIGNATURE]
            release_at_exit(self)

    def top_k(self, queries: np.ndarray, excludes: Sequence[Sequence[int]], k: int) -> Tuple[List[np.ndarray], List[np.ndarray], int]:
        """Per query: influencer ids and scores (best first, at most k) and how many fell back to exact scoring."""
        if self._search is None:
            return (*self._exact(queries, excludes, k), len(queries))
        result = self._search(**{EMBEDDING_KEY: self._tf.constant(queries, self._tf.float32)})
        out_ids, out_scores, short_rows = drop_excluded(result[IDS_KEY].numpy(), result[SCORE_KEY].numpy(), excludes, k, self.position)
        short = np.flatnonzero(short_rows).tolist()
        if short:
            exact_ids, exact_scores = self._exact(queries[short], [excludes[r] for r in short], k)
            for n, row in enumerate(short):
                out_ids[row], out_scores[row] = exact_ids[n], exact_scores[n]
        return out_ids, out_scores, len(short)

    def _exact(self, queries: np.ndarray, excludes: Sequence[Sequence[int]], k: int) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        banned = [np.array([self.position[int(i)] for i in row if int(i) in self.position], np.int64) for row in excludes]
        positions, scores = exact_top_k(queries, self.embeddings, k, banned)
        ids, kept_scores = [], []
        for row in range(len(queries)):
            valid = positions[row] >= 0
            ids.append(self.ids[positions[row][valid]])
            kept_scores.append(scores[row][valid])
        return ids, kept_scores


class RetrieveTopK(beam.DoFn):
    """Batches of (OwnerRow, embedding, history_size) -> scored rows; unknown owners and failures -> 'dead'."""

    def __init__(self, version_dir: str, k: int, brute_force: bool, progress_dir: Optional[str] = None):
        self._progress_dir = progress_dir
        self._version_dir = version_dir
        self._k = k
        self._brute_force = brute_force
        self._scored = Metrics.counter(METRICS_NAMESPACE, "owners_scored")
        self._unknown = Metrics.counter(METRICS_NAMESPACE, "unknown_owners")
        self._failures = Metrics.counter(METRICS_NAMESPACE, "failures")
        self._fallbacks = Metrics.counter(METRICS_NAMESPACE, "exact_fallbacks")

    def setup(self):
        version_dir, brute_force = self._version_dir, self._brute_force
        self._retriever = _SHARED.acquire(lambda: _SharedRetriever(version_dir, brute_force), tag=f"{version_dir}:{brute_force}")
        self._done = progress.CountFile(self._progress_dir, progress.DONE)

    def finish_bundle(self):
        self._done.flush()

    def process(self, batch):
        self._done.add(len(batch))
        known = []
        for row, embedding, history_size in batch:
            if history_size == 0:
                self._unknown.inc()
                yield beam.pvalue.TaggedOutput("dead", dead_letter(str(row.owner_id), row.file, row.line, f"{UNKNOWN_OWNER}: the model has no train history for it"))
            else:
                known.append((row, embedding))
        if not known:
            return
        try:
            queries = np.stack([embedding for _, embedding in known]).astype(np.float32)
            ids, scores, fallbacks = self._retriever.retriever.top_k(queries, [row.exclude for row, _ in known], self._k)
        except Exception as error:  # one bad batch is counted and dead-lettered, not fatal
            logging.exception("retrieval failed for a batch of %d owners", len(known))
            self._failures.inc(len(known))
            for row, _ in known:
                yield beam.pvalue.TaggedOutput("dead", dead_letter(str(row.owner_id), row.file, row.line, f"{RETRIEVAL_FAILED}: {error}"))
            return
        self._fallbacks.inc(fallbacks)
        for (row, _), row_ids, row_scores in zip(known, ids, scores):
            yield scored_row(row.owner_id, row_ids, row_scores)
        self._scored.inc(len(known))


class _SharedRetriever:
    """Shared.acquire needs a weak-referenceable object."""

    def __init__(self, version_dir: str, brute_force: bool):
        self.retriever = Retriever(version_dir, brute_force)


def failed_inference_dead_letters(failed) -> Iterator[Dict]:
    """RunInference's failed (batch, exception) -> one dead letter per owner of the batch."""
    batch, error = failed
    for row in batch:
        yield dead_letter(str(row.owner_id), row.file, row.line, f"{INFERENCE_FAILED}: {error}")
