"""CatalogRefresher: `refresh-catalog` as a pipeline step, for catalogs that change daily and histories weekly.

The training pipeline runs when the history changes; the refresh pipeline
(pipeline.pipeline.create_refresh_pipeline) runs when the influencer file does.
Its input is the version served now, imported as a PushedModel artifact; its
output is a PushedModel artifact for the version it publishes, marked as the
Pusher marks its own (`pushed`, `pushed_destination`, `pushed_version`), so
whatever reads a push (the BatchScorer, the run summary) reads this one the
same way, and ML Metadata links each refreshed version to the one it came from.
The work is serving.catalog_refresh's, the same as the command's.
"""

import dataclasses
import json
import os

from tfx import v1 as tfx

from components.batch_scorer.executor import PUSHED_DESTINATION_PROPERTY, PUSHED_PROPERTY
from models.refresh import CatalogChange

PUSHED_VERSION_PROPERTY = "pushed_version"  # as TFX's Pusher._MarkPushed names it
SUMMARY_FILE = "catalog_refresh_summary.json"
COUNTS = tuple(field.name for field in dataclasses.fields(CatalogChange))  # unchanged, changed, added, removed


@tfx.dsl.components.component
def CatalogRefresher(
    served_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel],
    refreshed_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.PushedModel],
    influencers: tfx.dsl.components.Parameter[str],
    allow_shrink: tfx.dsl.components.Parameter[int] = 0,
) -> None:
    """served_model: a version folder (its uri); influencers: the new influencer CSV; allow_shrink: 1 to take a file
    that drops more than serving.catalog_refresh.MAX_REMOVED_SHARE of the catalog."""
    import tensorflow as tf

    from serving.catalog_refresh import refresh_catalog

    summary = refresh_catalog(served_model.uri, influencers, allow_shrink=bool(allow_shrink))
    tf.io.gfile.makedirs(refreshed_model.uri)
    with tf.io.gfile.GFile(os.path.join(refreshed_model.uri, SUMMARY_FILE), "w") as handle:
        handle.write(json.dumps(dataclasses.asdict(summary), indent=2))
    refreshed_model.set_int_custom_property(PUSHED_PROPERTY, 1)
    refreshed_model.set_string_custom_property(PUSHED_DESTINATION_PROPERTY, summary.version)
    refreshed_model.set_string_custom_property(PUSHED_VERSION_PROPERTY, os.path.basename(summary.version.rstrip("/")))
    for key in COUNTS:
        refreshed_model.set_int_custom_property(key, getattr(summary, key))
