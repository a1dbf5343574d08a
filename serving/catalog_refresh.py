"""`influencer-recs refresh-catalog`: a pushed version over a new influencer file, published as the newest version.

Steps: read the file with the pipeline's own row rules; load the version; refuse a file that drops more
than MAX_REMOVED_SHARE of its catalog unless asked to; build the refreshed module (models/refresh.py:
what new, changed and removed influencers get); save it, its ScaNN index and its assets.extra into a hidden
staging folder beside the version, and publish that (serving.versions.publish_version), so a server
polling the base serves it next. Nothing is retrained, and nothing already there is changed.
"""

import dataclasses
import json
import time
from typing import Dict

from data import validate
from data.errors import UserError
from models import progress
from serving import versions

# A daily export that loses a tenth of the catalog is more likely a partial export than a decision.
MAX_REMOVED_SHARE = 0.1


class CatalogShrinkError(UserError):
    """The new influencer file drops more of the catalog than a refresh takes without --allow-shrink."""


@dataclasses.dataclass(frozen=True)
class RefreshSummary:
    source: str  # the version folder refreshed
    version: str  # the version folder written
    unchanged: int
    changed: int
    added: int
    removed: int
    index_recall: float
    seconds: float
    step_seconds: Dict[str, float]  # read, load, compare, embed, save, index

    def line(self) -> str:
        return (
            f"{self.version}: {self.unchanged + self.changed + self.added:,} influencers ({self.unchanged:,} unchanged, {self.changed:,} with new "
            f"features, {self.added:,} new, {self.removed:,} removed) from {self.source}, ScaNN recall@k {self.index_recall:.3f} against brute "
            f"force, in {self.seconds:.0f} s (" + ", ".join(f"{name} {s:.0f} s" for name, s in self.step_seconds.items()) + ")"
        )


def _training_export(version_dir: str) -> dict:
    """The export settings the version was trained with (its training report)."""
    import tensorflow as tf

    from models.layout import TRAINING_REPORT

    path = versions.join(version_dir, "assets.extra", TRAINING_REPORT)
    try:
        with tf.io.gfile.GFile(path) as handle:
            return json.load(handle)["export"]
    except (tf.errors.NotFoundError, KeyError, ValueError):
        raise UserError(f"{version_dir}: not a version refresh-catalog can refresh ({path} has no export settings; versions pushed since "
                        "refresh-catalog exist have them): retrain, or refresh a newer version") from None


def _copy_extras(source_dir: str, staging: str, skip: set) -> None:
    import tensorflow as tf

    extra = versions.join(source_dir, "assets.extra")
    target = versions.join(staging, "assets.extra")
    tf.io.gfile.makedirs(target)
    for name in tf.io.gfile.listdir(extra) if tf.io.gfile.isdir(extra) else []:
        if name not in skip and not tf.io.gfile.isdir(versions.join(extra, name)):
            tf.io.gfile.copy(versions.join(extra, name), versions.join(target, name), overwrite=True)


def refresh_catalog(model: str, influencers: str, allow_shrink: bool = False) -> RefreshSummary:
    """Publishes `model`'s version (a version folder, or a base: its newest) over the influencers of the `influencers` CSV."""
    started = time.monotonic()
    source_dir = versions.resolve_version_dir(model)
    base = versions.model_base_of(source_dir)
    steps = progress.Steps()  # what a refresh spends its time on, in its report
    rows = steps.run("read", lambda: validate.read_influencers(influencers))  # a bad file is refused before TensorFlow loads
    import tensorflow as tf

    from models import refresh
    from models.config import ExportConfig, from_custom_config
    from models.index import export_index
    from models.layout import CATALOG_REFRESH_REPORT, INDEX_REPORT

    export = from_custom_config(ExportConfig, _training_export(source_dir))
    progress.report("refresh-catalog: %s influencers read from %s; loading %s", f"{len(rows):,}", influencers, source_dir)
    version = steps.run("load", lambda: tf.saved_model.load(source_dir))
    catalog = refresh.catalog_of(rows)
    positions, same, change = steps.run("compare", lambda: refresh.compare(refresh.served_catalog(version), catalog))
    progress.report("refresh-catalog: %s unchanged, %s with new features, %s new, %s removed", f"{change.unchanged:,}", f"{change.changed:,}",
                    f"{change.added:,}", f"{change.removed:,}")
    if change.removed_share > MAX_REMOVED_SHARE and not allow_shrink:
        raise CatalogShrinkError(
            f"{influencers}: drops {change.removed:,} of the {change.removed + change.unchanged + change.changed:,} influencers {source_dir} "
            f"serves ({change.removed_share:.0%}; a refresh takes at most {MAX_REMOVED_SHARE:.0%}): check that the export is whole, or pass "
            "--allow-shrink if the catalog really shrank"
        )
    progress.report("refresh-catalog: embedding %s new or changed influencers with the candidate tower", f"{change.changed + change.added:,}")
    module, tables = steps.run("embed", lambda: refresh.refreshed_module(version, catalog, positions, same, export.default_k, export.max_k))
    report = {"source": source_dir, "influencers": influencers, **dataclasses.asdict(change), "new_influencer_item_factors":
              f"mean of the {refresh.NEIGHBOURS} nearest influencers of the source catalog by candidate-tower embedding (cosine)"}

    index_report = {}

    def fill(staging: str) -> None:
        progress.report("refresh-catalog: saving the model")
        steps.run("save", lambda: tf.saved_model.save(module, staging, signatures=module.signatures()))
        _copy_extras(source_dir, staging, skip={INDEX_REPORT, CATALOG_REFRESH_REPORT})
        index_report.update(steps.run("index", lambda: export_index(module, tables, export, staging, step="refresh-catalog")))
        with tf.io.gfile.GFile(versions.join(staging, "assets.extra", CATALOG_REFRESH_REPORT), "w") as handle:
            handle.write(json.dumps({**report, "seconds": round(time.monotonic() - started, 1), "step_seconds": steps.rounded()}, indent=2))

    published = versions.publish_version(base, fill)
    target = versions.join(base, published.name)
    summary = RefreshSummary(source_dir, target, change.unchanged, change.changed, change.added, change.removed, index_report["recall_at_k"],
                             time.monotonic() - started, steps.rounded())
    progress.report("refresh-catalog: published %s", target)
    return summary
