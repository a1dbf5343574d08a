"""The ScaNN retrieval index over the whole catalog, tuned against brute force.

ScaNN ops are not in stock TF Serving, so this is a second SavedModel (saved
with the Scann op namespace allowed) next to the stock-ops one; Python and
Beam load it after `import scann`.
"""

import json
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from models import features, progress, request_checks
from models.config import ExportConfig
from models.retrieval_metrics import recall_against
from models.memory import trim_heap
from models.topk import drop_excluded, exact_top_k
from models.filters import EMPTY_ID, FILTER_SIGNATURE, Allowed, NUM_QUALIFIED_KEY, NUM_RESULTS_KEY, masked_top_k
from models.layout import INDEX_REPORT, SCANN_SUBDIR  # noqa: F401  (re-exported)
from models.serving import EMBEDDING_KEY, IDS_KEY, OWNER_INPUT, SCORE_KEY, served_function

SAVE_OPTIONS = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])


def _candidate_settings(n: int) -> List[Dict[str, int]]:
    """Index settings from fastest to most exact; the first that is accurate enough wins (build_index bisects them)."""
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


def search_index(index: tfrs.layers.factorized_top_k.ScaNN, queries: tf.Tensor, k: Optional[int] = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """ScaNN's (scores, ids) per query, the slots it found no neighbour for as EMPTY_ID with score 0.

    A batched ScaNN search fills a row that has fewer than k neighbours in the
    leaves it searched with index 0 and a NaN distance (scann.h,
    ReshapeBatchedNNResult); taken as they are, those slots would be the
    catalog's first influencer, repeated. Every reader of the index goes through here.
    """
    scores, ids = index(queries) if k is None else index(queries, k=k)
    missing = tf.math.is_nan(scores)
    return tf.where(missing, tf.zeros_like(scores), scores), tf.where(missing, tf.constant(EMPTY_ID, ids.dtype), ids)


def build_index(
    embeddings: np.ndarray,
    ids: np.ndarray,
    queries: np.ndarray,
    k: int,
    target_recall: float,
    fetch: int,
    exclude_ids: Optional[Sequence[np.ndarray]] = None,
) -> (tfrs.layers.factorized_top_k.ScaNN, Dict):
    """The cheapest ScaNN index whose recall@k against brute force reaches the target.

    With `exclude_ids` (each query owner's past hires) both sides drop them, as
    `recommend` does: ScaNN from its `fetch` candidates, brute force from the
    whole catalog. Owners with many hires near the top need a deeper search,
    which tuning on plain top-k would miss. A row left with fewer than k
    candidates is answered exactly when served (ScannModule), so it counts
    as exact here too; the report says how many rows that was.
    """
    k = min(k, len(ids))
    fetch = min(fetch, len(ids))
    exclude_positions = None
    excludes = exclude_ids if exclude_ids is not None else [()] * len(queries)
    position = {int(i): n for n, i in enumerate(ids)}
    if exclude_ids is not None:
        exclude_positions = [np.array([position[int(i)] for i in row if int(i) in position], np.int64) for row in exclude_ids]
    positions, _ = exact_top_k(queries, embeddings, k, exclude_positions)
    reference = np.where(positions >= 0, ids[positions], -1)  # -1: fewer than k allowed (recall skips it)
    settings = _candidate_settings(len(ids))
    tried, indexes = {}, {}

    candidates, candidate_ids = tf.constant(embeddings, tf.float32), tf.constant(ids, tf.int64)

    def attempt(n: int) -> bool:
        started = time.monotonic()
        index = tfrs.layers.factorized_top_k.ScaNN(k=fetch, distance_measure="dot_product", **settings[n])
        index.index(candidates, candidate_ids)
        built = time.monotonic() - started
        _, found = search_index(index, tf.constant(queries, tf.float32), k=fetch)
        kept, _, short = drop_excluded(found.numpy(), np.zeros(found.shape, np.float32), excludes, k, position)
        found = np.full((len(queries), k), -1, np.int64)
        for row, row_ids in enumerate(kept):
            found[row, : len(row_ids)] = row_ids
        found[short] = reference[short]  # served by the exact fallback
        recall = recall_against(reference, found, k)
        tried[n] = {**settings[n], "recall_at_k": recall, "exact_fallback_share": round(float(short.mean()), 4), "build_seconds": round(built, 3)}
        if recall >= target_recall or n == len(settings) - 1:  # only the index that may be kept stays in memory
            indexes.clear()
            indexes[n] = index
        del index
        trim_heap()  # a million-item build's scratch, freed: handed back before the next build
        return recall >= target_recall

    # Recall grows along the settings, so the first one that reaches the target is found by bisection;
    # the most exact one is kept when none does.
    low, high = 0, len(settings) - 1
    while low < high:
        middle = (low + high) // 2
        if attempt(middle):
            high = middle
        else:
            low = middle + 1
    if low not in tried:
        attempt(low)
    chosen, index = tried[low], indexes[low]
    tried = [tried[n] for n in sorted(tried)]
    report = {
        "catalog_size": int(len(ids)),
        "queries": int(len(queries)),
        "k": k,
        "fetch": fetch,
        "past_hires_excluded": exclude_ids is not None,
        "target_recall": target_recall,
        "recall_at_k": chosen["recall_at_k"],
        "exact_fallback_share": chosen["exact_fallback_share"],
        "settings": {key: chosen[key] for key in ("num_leaves", "num_leaves_to_search", "num_reordering_candidates")},
        "tried": tried,
    }
    return index, report


class ScannModule(tf.Module):
    """`recommend[_filtered]` and `recommend_explained[_filtered]` over the ScaNN index; same contract as the stock-ops model.

    The index returns `fetch` candidates; past hires and filtered-out
    influencers are dropped from them. A row that this leaves with fewer than
    min(k, qualified) results is answered by the exact brute-force ranking
    instead, so results never come up short. The choice is made per row, as
    batch scoring and the index tuning make it.
    """

    def __init__(self, serving_module, index):
        super().__init__()
        self.serving = serving_module
        self.index = index

    def _rank(self, query, allowed: Allowed, k) -> Dict[str, tf.Tensor]:
        """Top-k among allowed influencers from ScaNN's candidates, exact when those run short."""
        scores, ids = search_index(self.index, query)
        top_ids, top_scores, filled = masked_top_k(scores, ids, allowed.at(self.serving.filters.index_of(ids)), k)
        qualified = allowed.count()
        approximate = {IDS_KEY: top_ids, SCORE_KEY: top_scores, NUM_RESULTS_KEY: filled, NUM_QUALIFIED_KEY: qualified}
        short = filled < tf.minimum(k, qualified)

        def exact_where_short():
            exact = self.serving.rank(query, allowed, k)
            # The exact ranking is at least as wide: it ranks the whole catalog, not `fetch` candidates.
            pad = [[0, 0], [0, tf.shape(exact[IDS_KEY])[1] - tf.shape(top_ids)[1]]]
            widened = {IDS_KEY: tf.pad(top_ids, pad, constant_values=EMPTY_ID), SCORE_KEY: tf.pad(top_scores, pad)}
            rows = short[:, None]
            return {
                IDS_KEY: tf.where(rows, exact[IDS_KEY], widened[IDS_KEY]),
                SCORE_KEY: tf.where(rows, exact[SCORE_KEY], widened[SCORE_KEY]),
                NUM_RESULTS_KEY: tf.where(short, exact[NUM_RESULTS_KEY], filled),
                NUM_QUALIFIED_KEY: qualified,
            }

        return tf.cond(tf.reduce_any(short), exact_where_short, lambda: approximate)

    def _ranking(self, owner_id):
        """(owner inputs, served query, ScaNN top-k at the default k, past hires excluded): what `recommend` serves."""
        inputs = self.serving.known_owner_inputs(owner_id)
        batch = tf.shape(owner_id)[0]
        allowed = self.serving.filters.allowed_except(inputs[features.OWNER_HISTORY_KEY], batch)
        query = self.serving.query(inputs)
        return inputs, query, self._rank(query, allowed, self.serving.default_k(batch))

    def _filtered_ranking(self, owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids):
        filters = self.serving.filters
        inputs = self.serving.known_owner_inputs(owner_id)
        k = filters.checked_k(k)
        allowed = filters.mask(max_price, platform, min_followers, required_categories, exclude_ids, inputs[features.OWNER_HISTORY_KEY])
        query = self.serving.query(inputs)
        return inputs, query, self._rank(query, Allowed.of_mask(filters, allowed), k)

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT))
    def recommend(self, owner_id):
        return self._ranking(owner_id)[2]

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT), *FILTER_SIGNATURE)
    def recommend_filtered(self, owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids):
        return self._filtered_ranking(owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids)[2]

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT))
    def recommend_explained(self, owner_id):
        return self.serving.explained(*self._ranking(owner_id))

    @served_function(tf.TensorSpec([None], tf.int64, name=OWNER_INPUT), *FILTER_SIGNATURE)
    def recommend_explained_filtered(self, owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids):
        return self.serving.explained(*self._filtered_ranking(owner_id, k, max_price, platform, min_followers, required_categories, exclude_ids))

    @served_function(tf.TensorSpec([None, None], tf.float32, name=EMBEDDING_KEY))
    def search(self, embedding):
        """Query embeddings -> the index's over-fetched candidates (batch scoring filters them)."""
        embedding = request_checks.embedding(embedding, int(self.serving.catalog_embeddings.shape[1]), EMBEDDING_KEY)
        scores, ids = search_index(self.index, embedding)
        return {IDS_KEY: ids, SCORE_KEY: scores}


def save_index(serving_module, index, path: str) -> None:
    """Saves the ScaNN SavedModel (loading it needs `import scann` first)."""
    module = ScannModule(serving_module, index)
    signatures = {
        "recommend": module.recommend.get_concrete_function(),
        "recommend_filtered": module.recommend_filtered.get_concrete_function(),
        "recommend_explained": module.recommend_explained.get_concrete_function(),
        "recommend_explained_filtered": module.recommend_explained_filtered.get_concrete_function(),
        "search": module.search.get_concrete_function(),
    }
    tf.saved_model.save(module, path, signatures=signatures, options=SAVE_OPTIONS)


def export_index(module, tables: Dict[str, np.ndarray], config: ExportConfig, directory: str, step: str = "Trainer") -> Dict:
    """The ScaNN index, tuned on real owners' query embeddings against brute force, and its report.

    It fetches enough candidates that 95% of owners still have k after their past hires are
    dropped (the rest are answered exactly), and at least the configured fetch. `step` names the caller in progress lines.
    Returns the report it wrote.
    """
    owners = tf.constant(np.random.default_rng(0).permutation(tables["owner_ids"])[:5000], tf.int64)
    hires = np.diff(tables["hire_splits"])
    fetch = max(config.scann_fetch, config.default_k + int(np.percentile(hires, 95)) if len(hires) else 0)
    queries = module.query_embedding(owners)["embedding"].numpy()
    # Tuned on what `recommend` serves: the ranking with each owner's past hires left out.
    history = tf.RaggedTensor.from_sparse(module.owner_inputs(owners)[features.OWNER_HISTORY_KEY])
    progress.report("%s: tuning the ScaNN index on %s owners' queries against brute force", step, f"{len(queries):,}")
    index, report = build_index(
        module.catalog_embeddings.numpy(),
        module.catalog_ids.numpy(),
        queries,
        k=config.default_k,
        target_recall=config.scann_target_recall,
        fetch=fetch,
        exclude_ids=np.split(history.values.numpy(), history.row_splits.numpy()[1:-1]),  # a row at a time in eager took 2 ms each
    )
    settings = ", ".join(f"{key} {value}" for key, value in report["settings"].items()) if isinstance(report["settings"], dict) else str(report["settings"])
    progress.report("%s: ScaNN index recall@%d %.3f against brute force (%s)", step, report["k"], report["recall_at_k"], settings)
    save_index(module, index, os.path.join(directory, SCANN_SUBDIR))
    with tf.io.gfile.GFile(os.path.join(directory, "assets.extra", INDEX_REPORT), "w") as handle:
        handle.write(json.dumps(report, indent=2))
    return report
