"""Top-K for batches of query embeddings: ScaNN candidates or exact scores, past hires dropped.

The catalog (ids, embeddings) is read from the stock model's checkpoint and the
ScaNN index loaded once per worker process, shared by its threads
(apache_beam.utils.shared). ScaNN over-fetches candidates; when dropping an
owner's hires leaves fewer than k, that owner is scored exactly instead, so
results never come up short.
"""

import json
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
from apache_beam.utils import shared

from models.index import INDEX_REPORT, SCANN_SUBDIR
from models.topk import drop_excluded, exact_top_k
from models.serving import EMBEDDING_KEY, IDS_KEY, SCORE_KEY
from components.batch_scorer.inference import release_at_exit

SEARCH_SIGNATURE = "search"
# One handle per process (not per DoFn): every thread and pipeline of a worker shares one catalog and index per
# (version, mode); Shared frees them once no step holds them.
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


class _SharedRetriever:
    """Shared.acquire needs a weak-referenceable object."""

    def __init__(self, version_dir: str, brute_force: bool):
        self.retriever = Retriever(version_dir, brute_force)


def shared_retriever(version_dir: str, brute_force: bool) -> _SharedRetriever:
    """This process's one Retriever for (version, mode), in a holder: it lives while any caller keeps its holder."""
    return _SHARED.acquire(lambda: _SharedRetriever(version_dir, brute_force), tag=f"{version_dir}:{brute_force}")
