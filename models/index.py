"""The ScaNN retrieval index over the whole catalog, tuned against brute force.

ScaNN ops are not in stock TF Serving, so this is a second SavedModel (saved
with the Scann op namespace allowed) next to the stock-ops one; Python and
Beam load it after `import scann`.
"""

import time
from typing import Dict, List

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from models import features
from models.retrieval_metrics import recall_against
from models.serving import EMBEDDING_KEY, IDS_KEY, OWNER_INPUT, SCORE_KEY

SCANN_SUBDIR = "scann"
INDEX_REPORT = "index_report.json"
SAVE_OPTIONS = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])


def _candidate_settings(n: int) -> List[Dict[str, int]]:
    """Index settings from fastest to most exact; the first that is accurate enough wins."""
    leaves = max(2, int(np.sqrt(n)))
    settings = []
    for search_share, reorder in ((0.05, 100), (0.1, 200), (0.2, 400), (0.35, 800), (0.6, 1000), (1.0, 1000)):
        settings.append(
            dict(
                num_leaves=leaves,
                num_leaves_to_search=max(1, int(np.ceil(leaves * search_share))),
                num_reordering_candidates=min(reorder, n),
            )
        )
    return settings


def brute_force_topk(queries: np.ndarray, embeddings: np.ndarray, k: int, max_cells: int = 2**24) -> np.ndarray:
    """Exact top-k catalog positions per query (the reference for recall).

    Queries go in chunks of at most `max_cells` scores (64 MiB of float32), so
    a million-influencer catalog does not need queries x catalog in memory.
    """
    result = np.empty((len(queries), k), np.int64)
    step = max(1, max_cells // max(1, len(embeddings)))
    for start in range(0, len(queries), step):
        scores = queries[start : start + step] @ embeddings.T
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
        result[start : start + step] = np.take_along_axis(part, order, axis=1)
    return result


def build_index(
    embeddings: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int, target_recall: float, fetch: int
) -> (tfrs.layers.factorized_top_k.ScaNN, Dict):
    """The cheapest ScaNN index whose recall@k against brute force reaches the target."""
    k = min(k, len(ids))
    fetch = min(fetch, len(ids))
    reference = ids[brute_force_topk(queries, embeddings, k)]
    tried = []
    for setting in _candidate_settings(len(ids)):
        started = time.monotonic()
        index = tfrs.layers.factorized_top_k.ScaNN(k=fetch, distance_measure="dot_product", **setting)
        index.index(tf.constant(embeddings, tf.float32), tf.constant(ids, tf.int64))
        built = time.monotonic() - started
        _, found = index(tf.constant(queries, tf.float32), k=k)
        recall = recall_against(reference, found.numpy(), k)
        tried.append({**setting, "recall_at_k": recall, "build_seconds": round(built, 3)})
        if recall >= target_recall:
            break
    report = {
        "catalog_size": int(len(ids)),
        "queries": int(len(queries)),
        "k": k,
        "fetch": fetch,
        "target_recall": target_recall,
        "recall_at_k": tried[-1]["recall_at_k"],
        "settings": {key: tried[-1][key] for key in ("num_leaves", "num_leaves_to_search", "num_reordering_candidates")},
        "tried": tried,
    }
    return index, report


class ScannModule(tf.Module):
    """`recommend` over the ScaNN index, same contract as the stock-ops model.

    The index returns `fetch` candidates and the owner's past hires are dropped
    from them, so an owner whose past hires fill more than `fetch - k` of its
    nearest candidates gets fewer than k results (scores -inf mark the gap);
    the brute-force model has no such limit.
    """

    def __init__(self, serving_module, index, k: int):
        super().__init__()
        self.serving = serving_module
        self.index = index
        self._k = k

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name=OWNER_INPUT)])
    def recommend(self, owner_id):
        inputs = self.serving._owner_inputs(owner_id)
        query = self.serving.query_tower(inputs)
        scores, ids = self.index(query)  # over-fetched, so past hires can be dropped
        history = tf.sparse.to_dense(inputs[features.OWNER_HISTORY_KEY], default_value=-1)
        is_hired = tf.reduce_any(tf.equal(ids[:, :, None], history[:, None, :]), axis=2)
        # Padding in `history` is -1, as are the index's own empty slots: neither is a result.
        scores = tf.where(is_hired | (ids < 0), tf.constant(-np.inf, tf.float32), scores)
        top = tf.math.top_k(scores, k=self._k)
        return {IDS_KEY: tf.gather(ids, top.indices, batch_dims=1), SCORE_KEY: top.values}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name=EMBEDDING_KEY)])
    def search(self, embedding):
        """Query embeddings -> the index's over-fetched candidates (batch scoring filters them)."""
        scores, ids = self.index(embedding)
        return {IDS_KEY: ids, SCORE_KEY: scores}


def save_index(serving_module, index, k: int, path: str) -> None:
    """Saves the ScaNN SavedModel (loading it needs `import scann` first)."""
    module = ScannModule(serving_module, index, k)
    signatures = {"recommend": module.recommend.get_concrete_function(), "search": module.search.get_concrete_function()}
    tf.saved_model.save(module, path, signatures=signatures, options=SAVE_OPTIONS)
