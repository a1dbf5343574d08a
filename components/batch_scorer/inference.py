"""The pushed stock model in batch scoring: owner ids -> query embeddings (RunInference), and the explanations.

RunInference batches the owners (BatchElements) and loads the model once per
worker process, shared by its threads; ExplainRows reuses that one loaded model.
"""

import atexit
import gc
import os
import threading
import weakref
from typing import Any, Dict, Iterable, Optional, Sequence

import numpy as np
import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler

from components.batch_scorer.records import HIRE_IDS_COLUMN, HIRE_SHARES_COLUMN, IDS_COLUMN, OWNER_COLUMN, TOWER_SHARES_COLUMN
from models.explain import HIRE_IDS_KEY, HIRE_SHARES_KEY, TOWER_SHARE_KEY
from models.filters import EMPTY_ID
from models.serving import EMBEDDING_KEY, HISTORY_SIZE_KEY, IDS_KEY, OWNER_INPUT

QUERY_EMBEDDING_SIGNATURE = "query_embedding"
EXPLAIN_SIGNATURE = "explain"


# The last loaded model of this process: RunInference loads once per DoFn instance, and pushed versions never
# change, so back-to-back pipelines in one process (tests, the BatchScorer in a local run) reuse it.
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


class QueryEmbeddingHandler(ModelHandler):
    """Elements with an `owner_id` field -> (element, embedding [D], history_size).

    history_size 0 means the model never saw the owner in training.
    """

    def __init__(self, version_dir: str, min_batch_size: int = 32, max_batch_size: int = 1024):
        super().__init__()
        self._version_dir = version_dir
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self) -> _LoadedModel:
        return load_model(self._version_dir)

    def run_inference(self, batch: Sequence[Any], model: _LoadedModel, inference_args: Optional[Dict[str, Any]] = None) -> Iterable[tuple]:
        tf = model.tf
        owner_ids = np.array([row.owner_id for row in batch], np.int64)
        result = model.query_embedding(**{OWNER_INPUT: tf.constant(owner_ids)})
        embeddings = result[EMBEDDING_KEY].numpy()
        history = result[HISTORY_SIZE_KEY].numpy()
        return [(row, embeddings[n], int(history[n])) for n, row in enumerate(batch)]

    def batch_elements_kwargs(self) -> Dict[str, int]:
        return dict(self._batching)

    def get_metrics_namespace(self) -> str:
        return "batch_score_inference"


class ExplainRows(beam.DoFn):
    """Batches of scored rows -> the same rows with why each influencer is there (models/explain.py), flat per row."""

    def __init__(self, version_dir: str):
        self._version_dir = version_dir

    def setup(self):
        self._model = load_model(self._version_dir)
        if self._model.explain is None:
            raise ValueError(f"{self._version_dir} has no explain signature (pushed before it existed): score it without --explain")

    def process(self, batch):
        tf = self._model.tf
        width = max(1, max(len(row[IDS_COLUMN]) for row in batch))
        ids = np.full((len(batch), width), EMPTY_ID, np.int64)
        for n, row in enumerate(batch):
            ids[n, : len(row[IDS_COLUMN])] = row[IDS_COLUMN]
        out = self._model.explain(**{OWNER_INPUT: tf.constant([row[OWNER_COLUMN] for row in batch], tf.int64), IDS_KEY: tf.constant(ids)})
        hires, shares, towers = (out[key].numpy() for key in (HIRE_IDS_KEY, HIRE_SHARES_KEY, TOWER_SHARE_KEY))
        for n, row in enumerate(batch):
            found = len(row[IDS_COLUMN])
            yield {**row, HIRE_IDS_COLUMN: [int(v) for v in hires[n, :found].ravel()],
                   HIRE_SHARES_COLUMN: [float(v) for v in shares[n, :found].ravel()], TOWER_SHARES_COLUMN: [float(v) for v in towers[n, :found]]}
