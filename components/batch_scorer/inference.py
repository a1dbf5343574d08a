"""The pushed stock model in batch scoring: owner ids -> query embeddings, and the explanations.

The model is loaded once per worker process and shared by its threads and by
back-to-back jobs of one process.
"""

import atexit
import gc
import os
import threading
import weakref
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from components.batch_scorer.records import HIRE_IDS_COLUMN, HIRE_SHARES_COLUMN, IDS_COLUMN, OWNER_COLUMN, TOWER_SHARES_COLUMN
from models.explain import HIRE_IDS_KEY, HIRE_SHARES_KEY, TOWER_SHARE_KEY
from models.filters import EMPTY_ID
from models.serving import EMBEDDING_KEY, HISTORY_SIZE_KEY, IDS_KEY, OWNER_INPUT

QUERY_EMBEDDING_SIGNATURE = "query_embedding"
EXPLAIN_SIGNATURE = "explain"


# The last loaded model of this process: pushed versions never change, so back-to-back jobs in one process
# (tests, the BatchScorer in a local run) reuse it.
_CACHE: Dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


_HOLDERS: "weakref.WeakSet" = weakref.WeakSet()


def release_at_exit(holder: Any) -> None:
    """Registers an object holding loaded SavedModels, to be emptied at exit while the interpreter is whole.

    Left to shutdown (Beam's DoFns and shared handles keep them to the end), every tf.function of a loaded
    model runs AtomicFunction.__del__ after TensorFlow's modules are torn down and prints a TypeError.
    """
    _HOLDERS.add(holder)


@atexit.register
def _release() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
    for holder in list(_HOLDERS):
        holder.__dict__.clear()
    gc.collect()


class _LoadedModel:
    """Keeps the loaded SavedModel alive next to its signature (the signature alone can lose its variables)."""

    def __init__(self, version_dir: str):
        import tensorflow as tf

        self.tf = tf
        self.module = tf.saved_model.load(version_dir)
        self.query_embedding = self.module.signatures[QUERY_EMBEDDING_SIGNATURE]
        self.explain = self.module.signatures.get(EXPLAIN_SIGNATURE)  # None in versions pushed before it existed
        release_at_exit(self)


def load_model(version_dir: str) -> _LoadedModel:
    """The process's one loaded copy of a pushed version."""
    with _CACHE_LOCK:
        if _CACHE.get("dir") != version_dir:
            _CACHE.update(dir=version_dir, model=_LoadedModel(version_dir))
        return _CACHE["model"]


def query_embeddings(model: _LoadedModel, owner_ids: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """(embeddings [n, D], history sizes [n]) of owners; history size 0: the model never saw the owner in training."""
    result = model.query_embedding(**{OWNER_INPUT: model.tf.constant(np.asarray(owner_ids, np.int64))})
    return result[EMBEDDING_KEY].numpy(), result[HISTORY_SIZE_KEY].numpy()


def check_explains(model: _LoadedModel, version_dir: str) -> None:
    if model.explain is None:
        raise ValueError(f"{version_dir} has no explain signature (pushed before it existed): score it without --explain")


def explain_rows(model: _LoadedModel, rows: List[Dict]) -> List[Dict]:
    """Scored rows -> the same rows with why each influencer is there (models/explain.py), flat per row."""
    tf = model.tf
    width = max(1, max(len(row[IDS_COLUMN]) for row in rows))
    ids = np.full((len(rows), width), EMPTY_ID, np.int64)
    for n, row in enumerate(rows):
        ids[n, : len(row[IDS_COLUMN])] = row[IDS_COLUMN]
    out = model.explain(**{OWNER_INPUT: tf.constant([row[OWNER_COLUMN] for row in rows], tf.int64), IDS_KEY: tf.constant(ids)})
    hires, shares, towers = (out[key].numpy() for key in (HIRE_IDS_KEY, HIRE_SHARES_KEY, TOWER_SHARE_KEY))
    explained = []
    for n, row in enumerate(rows):
        found = len(row[IDS_COLUMN])
        explained.append({**row, HIRE_IDS_COLUMN: [int(v) for v in hires[n, :found].ravel()],
                          HIRE_SHARES_COLUMN: [float(v) for v in shares[n, :found].ravel()], TOWER_SHARES_COLUMN: [float(v) for v in towers[n, :found]]})
    return explained
