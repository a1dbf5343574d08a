"""BatchScorer: after a push, top-K for every owner of the input history, as a BatchScores artifact.

Runs only on what the Pusher actually pushed (its `pushed_model` output with
`pushed` = 1); a run whose model was not blessed records an empty, unscored
artifact. The scoring itself is pipeline/batch_score.py (its own Beam pipeline,
published atomically into the artifact's folder).
"""

import json
import os
from typing import Dict, Optional

from absl import logging
from tfx import v1 as tfx

PUSHED_PROPERTY = "pushed"  # set by TFX's Pusher._MarkPushed
PUSHED_DESTINATION_PROPERTY = "pushed_destination"


class BatchScores(tfx.dsl.Artifact):
    """A folder of batch top-K results (pipeline/batch_output.py layout)."""

    TYPE_NAME = "BatchScores"


def is_pushed(pushed_model: tfx.dsl.Artifact) -> bool:
    return pushed_model.has_custom_property(PUSHED_PROPERTY) and pushed_model.get_int_custom_property(PUSHED_PROPERTY) == 1


def score_pushed_model(pushed_model: tfx.dsl.Artifact, out_dir: str, owners: str, k: int, beam_args: Optional[list] = None) -> Optional[Dict]:
    """Scores `owners` with the pushed version into `out_dir`; None (nothing written) when nothing was pushed."""
    if not is_pushed(pushed_model):
        logging.info("BatchScorer: the model was not pushed; nothing to score")
        return None
    from pipeline.batch_score import run_batch_score

    destination = pushed_model.get_string_custom_property(PUSHED_DESTINATION_PROPERTY)
    model_dir = destination if destination and os.path.isdir(destination) else pushed_model.uri
    summary = run_batch_score(model_dir, owners, out_dir, k=k, beam_args=beam_args)
    logging.info("BatchScorer: %s", json.dumps({key: summary[key] for key in ("owners_read", "owners_scored", "dead_lettered")}))
    return summary


@tfx.dsl.components.component
def BatchScorer(
    pushed_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel],
    batch_scores: tfx.dsl.components.OutputArtifact[BatchScores],
    owners: tfx.dsl.components.Parameter[str],
    k: tfx.dsl.components.Parameter[int],
    beam_args: tfx.dsl.components.Parameter[str],
) -> None:
    """owners: history CSV or id list; beam_args: JSON list of Beam options for the scoring pipeline."""
    summary = score_pushed_model(pushed_model, batch_scores.uri, owners, k, json.loads(beam_args) or None)
    batch_scores.set_int_custom_property("scored", int(summary is not None))
    if summary is not None:
        for key in ("owners_read", "owners_scored", "dead_lettered"):
            batch_scores.set_int_custom_property(key, int(summary[key]))
