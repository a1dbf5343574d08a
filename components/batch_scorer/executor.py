"""The BatchScorer's executor: score with the version the Pusher pushed, or record that nothing was."""

import os
from typing import Dict, Optional

from absl import logging
from tfx import v1 as tfx

from components.batch_scorer.job import run_batch_score
from models import progress

PUSHED_PROPERTY = "pushed"  # set by TFX's Pusher._MarkPushed
PUSHED_DESTINATION_PROPERTY = "pushed_destination"
SUMMARY_COUNTS = ("owners_read", "owners_scored", "dead_lettered")


def is_pushed(pushed_model: tfx.dsl.Artifact) -> bool:
    return pushed_model.has_custom_property(PUSHED_PROPERTY) and pushed_model.get_int_custom_property(PUSHED_PROPERTY) == 1


def score_pushed_model(pushed_model: tfx.dsl.Artifact, out_dir: str, owners: str, k: int, beam_args: Optional[list] = None) -> Optional[Dict]:
    """Scores `owners` with the pushed version into `out_dir`; None (nothing written) when nothing was pushed."""
    if not is_pushed(pushed_model):
        logging.info("BatchScorer: the model was not pushed; nothing to score")
        return None
    destination = pushed_model.get_string_custom_property(PUSHED_DESTINATION_PROPERTY)
    model_dir = destination if destination and _isdir(destination) else pushed_model.uri
    summary = run_batch_score(model_dir, owners, out_dir, k=k, beam_args=beam_args)
    progress.report("BatchScorer: read %d owners, scored %d, dead-lettered %d", *(summary[key] for key in SUMMARY_COUNTS))
    return summary


def _isdir(path: str) -> bool:
    import tensorflow as tf

    return tf.io.gfile.isdir(path)
