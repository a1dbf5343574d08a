"""Retrieval quality over the whole catalog, and the blessing Pusher obeys.

TFMA (the Evaluator) judges the rating head. Whether the model ranks the
catalog well is judged here, with the benchmark protocol
(models/retrieval_metrics): every eval owner's held-out influencers against
the whole catalog minus its train influencers, Recall@K and NDCG@K, next to
most-popular on the same split. The model is blessed only if TFMA blessed it
and it clears the configured floors.
"""

import json
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import standard_artifacts

from models import features, progress
from models.baselines import most_popular_scores
from models.examples import read_split, split_files
from models.layout import MEASURED_FORMAT, RETRIEVAL_METRICS_FILE
from models.retrieval_metrics import IndexedInteractions, index_interactions, owner_means, per_owner_rankings
from models.slices import K as SLICE_K, popularity_groups, sliced_recall

METRICS_FILE = RETRIEVAL_METRICS_FILE
_PAIR_SPEC = {
    features.OWNER_ID: tf.io.FixedLenFeature([1], tf.int64),
    features.INFLUENCER_ID: tf.io.FixedLenFeature([1], tf.int64),
}


def read_pairs(examples_uri: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """(owner ids, influencer ids) of a split of raw interaction examples."""
    pairs = read_split(split_files(examples_uri, split), _PAIR_SPEC)
    return pairs[features.OWNER_ID].astype(np.int64), pairs[features.INFLUENCER_ID].astype(np.int64)


def split_interactions(examples_uri: str, catalog_ids: np.ndarray) -> Tuple[IndexedInteractions, IndexedInteractions]:
    """Known (train and validation) and eval rows as dense indices over the catalog and one owner vocabulary.

    Every row outside eval is an owner's known hire: never ranked, and what the baselines learn from.
    """
    known = [read_pairs(examples_uri, split) for split in (features.TRAIN_SPLIT, features.VALIDATION_SPLIT)]
    train_pairs = tuple(np.concatenate(parts) for parts in zip(*known))
    eval_pairs = read_pairs(examples_uri, features.EVAL_SPLIT)
    owner_vocab = np.union1d(train_pairs[0], eval_pairs[0])
    return (
        index_interactions(*train_pairs, catalog_ids, owner_vocab),
        index_interactions(*eval_pairs, catalog_ids, owner_vocab),
    )


def eval_sample(heldout: IndexedInteractions, max_owners: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """The eval pairs the gate scores: every eval owner's, or those of a seeded sample of `max_owners` owners."""
    owners = np.unique(heldout.owners)
    if len(owners) > max_owners:
        owners = np.sort(np.random.default_rng(seed).choice(owners, max_owners, replace=False))
    keep = np.isin(heldout.owners, owners)
    return heldout.owners[keep], heldout.items[keep]


def evaluate_model(serving_dir: str, examples_uri: str, max_owners: int, seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Model and most-popular metrics on the eval split (a seeded owner sample if large), and under "slices"
    each one's recall@10 by owner history and influencer popularity (models/slices)."""
    model = tf.saved_model.load(serving_dir)
    catalog_ids = model.catalog_ids.numpy()
    embeddings = model.catalog_embeddings.numpy()
    train, heldout = split_interactions(examples_uri, catalog_ids)
    owner_vocab = train.owner_vocab
    heldout_pairs = eval_sample(heldout, max_owners, seed)
    query = model.signatures["query_embedding"]

    def model_scores(owner_indices: np.ndarray) -> np.ndarray:
        ids = tf.constant(owner_vocab[owner_indices], tf.int64)
        return query(owner_id=ids)["embedding"].numpy() @ embeddings.T

    n_items = len(catalog_ids)
    groups = popularity_groups(train.pairs, n_items)
    per_owner = {name: per_owner_rankings(scores, train.pairs, heldout_pairs, n_items, item_groups=groups)
                 for name, scores in (("model", model_scores), ("most_popular", most_popular_scores(train.pairs, n_items)))}
    metrics: Dict = {name: owner_means(values) for name, values in per_owner.items()}
    metrics["slices"] = {name: sliced_recall(values, train.pairs) for name, values in per_owner.items()}
    return metrics


def merge_slices(by_model: Dict[str, Dict]) -> Dict[str, Dict[str, Dict[str, float]]]:
    """{slicing: {bucket: {"owners": n, <model>: recall@10, ...}}} from each model's sliced_recall on one split."""
    merged: Dict[str, Dict[str, Dict[str, float]]] = {}
    for name, slicings in by_model.items():
        for slicing, buckets in slicings.items():
            for bucket, values in buckets.items():
                merged.setdefault(slicing, {}).setdefault(bucket, {"owners": values["owners"]})[name] = values[f"recall@{SLICE_K}"]
    return merged


def read_gate_report(evaluation_uri: str) -> Dict:
    """The record a RetrievalEvaluator run wrote into its `evaluation` artifact."""
    with tf.io.gfile.GFile(os.path.join(evaluation_uri, METRICS_FILE)) as handle:
        return json.load(handle)


def judge(metrics: Dict[str, Dict[str, float]], min_recall_at_10: float, min_lift_over_popular: float, max_recall_drop: float = 1.0) -> List[str]:
    """Reasons not to bless; empty when the model clears every floor.

    With metrics["last_blessed"] (the model now served, scored on the same owners),
    a new model more than `max_recall_drop` (a share) below its recall@10 is refused too.
    """
    reasons = []
    recall, popular = metrics["model"]["recall@10"], metrics["most_popular"]["recall@10"]
    if "last_blessed" in metrics:
        served = metrics["last_blessed"]["recall@10"]
        if recall < (1.0 - max_recall_drop) * served:
            reasons.append(f"recall@10 {recall:.4f} is more than {max_recall_drop:.0%} below the last blessed model's {served:.4f}")
    if recall < min_recall_at_10:
        reasons.append(f"recall@10 {recall:.4f} is below the floor {min_recall_at_10:.4f}")
    if recall < min_lift_over_popular * popular:
        reasons.append(
            f"recall@10 {recall:.4f} is below {min_lift_over_popular:g} x most-popular's {popular:.4f}"
        )
    return reasons


@tfx.dsl.components.component
def RetrievalEvaluator(
    model: tfx.dsl.components.InputArtifact[standard_artifacts.Model],
    examples: tfx.dsl.components.InputArtifact[standard_artifacts.Examples],
    rating_blessing: tfx.dsl.components.InputArtifact[standard_artifacts.ModelBlessing],
    evaluation: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelEvaluation],
    blessing: tfx.dsl.components.OutputArtifact[standard_artifacts.ModelBlessing],
    min_recall_at_10: tfx.dsl.components.Parameter[float],
    min_lift_over_popular: tfx.dsl.components.Parameter[float],
    max_recall_drop: tfx.dsl.components.Parameter[float],
    max_eval_owners: tfx.dsl.components.Parameter[int],
    baseline_model: tfx.dsl.components.InputArtifact[standard_artifacts.Model] = None,
    code_version: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """Records retrieval metrics; blesses only a model TFMA blessed that clears the floors and is not
    more than max_recall_drop below the last blessed model (`baseline_model`, from the resolver).

    The thresholds have no defaults here: they are PipelineConfig's. code_version is only for TFX's cache key.
    """
    from absl import logging

    metrics = evaluate_model(os.path.join(model.uri, MEASURED_FORMAT), examples.uri, max_eval_owners)
    slices = metrics.pop("slices")
    if baseline_model is not None and baseline_model.uri != model.uri:
        baseline = evaluate_model(os.path.join(baseline_model.uri, MEASURED_FORMAT), examples.uri, max_eval_owners)
        metrics["last_blessed"], slices["last_blessed"] = baseline["model"], baseline["slices"]["model"]
    metrics["slices"] = merge_slices(slices)
    reasons = judge(metrics, min_recall_at_10, min_lift_over_popular, max_recall_drop)
    if not rating_blessing.get_int_custom_property("blessed"):
        reasons.append("the Evaluator (TFMA, rating head) did not bless the model")
    with tf.io.gfile.GFile(os.path.join(evaluation.uri, METRICS_FILE), "w") as handle:
        handle.write(json.dumps({**metrics, "blessed": not reasons, "reasons": reasons}, indent=2))
    for name, values in metrics.items():
        logging.info("Retrieval %s: %s", name, json.dumps(values))
    blessed = not reasons
    blessing.set_int_custom_property("blessed", int(blessed))
    # What LatestBlessedModelStrategy reads to find the baseline for the next run.
    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
    with tf.io.gfile.GFile(os.path.join(blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w") as handle:
        handle.write("\n".join(reasons))
    model_recall, popular = metrics["model"]["recall@10"], metrics["most_popular"]["recall@10"]
    progress.report(
        "RetrievalEvaluator: recall@10 %.4f, most-popular %.4f (%s)%s: %s", model_recall, popular,
        f"{model_recall / popular:.2f}x, floor {min_lift_over_popular:g}x" if popular > 0 else "most-popular scores 0",
        f", last blessed {metrics['last_blessed']['recall@10']:.4f}" if "last_blessed" in metrics else "",
        "blessed" if blessed else "not blessed: " + "; ".join(reasons),
    )
