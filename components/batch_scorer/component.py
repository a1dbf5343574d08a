"""BatchScorer: after a push, top-K for every owner of the input history, as a BatchScores artifact.

Runs only on what the Pusher actually pushed (its `pushed_model` output with
`pushed` = 1); a run whose model was not blessed records an empty, unscored
artifact. The work is executor.py's; the Beam job itself is job.py, the same
one `influencer-recs batch-score` runs.
"""

import json

from tfx import v1 as tfx

from components.batch_scorer.executor import SUMMARY_COUNTS, score_pushed_model


class BatchScores(tfx.dsl.Artifact):
    """A folder of batch top-K results (components/batch_scorer/output.py layout)."""

    TYPE_NAME = "BatchScores"


@tfx.dsl.components.component
def BatchScorer(
    pushed_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel],
    batch_scores: tfx.dsl.components.OutputArtifact[BatchScores],
    owners: tfx.dsl.components.Parameter[str],
    k: tfx.dsl.components.Parameter[int],
    beam_args: tfx.dsl.components.Parameter[str],
    code_version: tfx.dsl.components.Parameter[str] = "",
) -> None:
    """owners: history CSV or id list; beam_args: JSON list of Beam options for the scoring pipeline; code_version: the cache key's."""
    summary = score_pushed_model(pushed_model, batch_scores.uri, owners, k, json.loads(beam_args) or None)
    batch_scores.set_int_custom_property("scored", int(summary is not None))
    if summary is not None:
        for key in SUMMARY_COUNTS:
            batch_scores.set_int_custom_property(key, int(summary[key]))
