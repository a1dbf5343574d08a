"""Batch scoring: top-K influencers for many owners with Apache Beam, from a pushed model.

owners (history CSV or id list) -> CoGroupByKey with their hires -> RunInference
(query embeddings, stock model) -> ScaNN / exact top-K -> sharded files, published
atomically, with a dead-letter output and a summary whose counts are checked.
"""

import logging
import os
import time
from typing import Dict, List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from data.errors import UserError
from components.batch_scorer.inference import ExplainRows, QueryEmbeddingHandler
from components.batch_scorer.retrieval import RetrieveTopK, failed_inference_dead_letters, index_fetch, load_catalog
from models.owner_tables import HISTORY_FILE as TRAIN_HIRES_ASSET, SERVED_HISTORY_FILE
from serving.versions import resolve_version_dir
from components.batch_scorer import output as batch_output, progress
from components.batch_scorer.records import METRICS_NAMESPACE
from components.batch_scorer.owners import ReadOwnersAndHires, check_hire_csv, detect_format, resolve_owners_path
from components.beam_options import check_beam_args, default_beam_args

COUNTERS = ("owners_read", "owners_scored", "unknown_owners", "invalid_owner_ids", "failures", "exact_fallbacks")
MIN_BATCH, MAX_BATCH = 32, 1024


class BatchScoreCountError(RuntimeError):
    """The output does not account for every owner read (scored + dead-lettered != read)."""


class NoOwnersError(UserError):
    """The owners source held no owner id at all: a previous result is not replaced by an empty one."""


def pipeline_options(beam_args: Optional[Sequence[str]]) -> PipelineOptions:
    """Beam options as given (untouched); none given -> the multi-processing DirectRunner on all cores."""
    args = list(beam_args) if beam_args else default_beam_args()
    check_beam_args(args)  # a typo would otherwise be dropped with one log line, and the defaults with it
    return PipelineOptions(args)


def check_k(k: int, version_dir: str, brute_force: bool) -> int:
    """k within 1..min(fetch, catalog) (ScaNN) or 1..catalog (brute force); the catalog size."""
    catalog = len(load_catalog(version_dir)[0])
    limit = catalog
    fetch = None if brute_force else index_fetch(version_dir)
    if fetch is not None:
        limit = min(limit, fetch)
    if not 1 <= k <= limit:
        where = f"the catalog's {catalog} influencers" + ("" if fetch is None else f" and the ScaNN index's {fetch} candidates")
        raise UserError(f"k must be between 1 and {limit} ({where}), got {k}")
    return catalog


def build_pipeline(
    pipeline: beam.Pipeline, version_dir: str, owners: str, out_dir: str, k: int, exclude_history: Optional[str], output_format: str, brute_force: bool,
    explain: bool = False, progress_dir: Optional[str] = None,
) -> None:
    """Adds the batch scoring steps to `pipeline`, writing under `out_dir` (running counts under `progress_dir`)."""
    # What `recommend` excludes: the pushed version's hires from every row, or (older or measured exports) Transform's train hires.
    candidates = [os.path.join(version_dir, "assets.extra", SERVED_HISTORY_FILE), os.path.join(version_dir, "assets", TRAIN_HIRES_ASSET)]
    known_hires = next((path for path in candidates if FileSystems.exists(path)), None)
    read = pipeline | "ReadOwnersAndHires" >> ReadOwnersAndHires(owners, known_hires, exclude_history, progress_dir)
    owner_rows = read["main"] | "CountRead" >> beam.Map(_count_read)
    invalid = read["invalid"]
    inference = owner_rows | "QueryEmbeddings" >> RunInference(QueryEmbeddingHandler(version_dir, MIN_BATCH, MAX_BATCH)).with_exception_handling()
    embedded = inference[0] if isinstance(inference, tuple) else inference.main
    failed = (inference[1] if isinstance(inference, tuple) else inference.other).failed_inferences
    retrieved = (
        embedded
        | "BatchForRetrieval" >> beam.BatchElements(min_batch_size=MIN_BATCH, max_batch_size=MAX_BATCH)
        | "TopK" >> beam.ParDo(RetrieveTopK(version_dir, k, brute_force, progress_dir)).with_outputs("dead", main="scored")
    )
    failed_letters = failed | "FailedInferences" >> beam.FlatMap(_count_failures)
    dead = (invalid, retrieved.dead, failed_letters) | "AllDeadLetters" >> beam.Flatten()
    scored = retrieved.scored
    if explain:
        scored = (scored | "BatchForExplain" >> beam.BatchElements(min_batch_size=MIN_BATCH, max_batch_size=MAX_BATCH)
                  | "Explain" >> beam.ParDo(ExplainRows(version_dir)))
    batch_output.write_scores(scored, out_dir, output_format, explain)
    batch_output.write_dead_letters(dead, out_dir)
    read_all = (owner_rows, invalid) | "AllRead" >> beam.Flatten()
    batch_output.write_counts({"read": read_all, "scored": retrieved.scored, "dead_lettered": dead}, out_dir)


def _count_read(row):
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, "owners_read").inc()
    return row


def _count_failures(failed):
    letters = list(failed_inference_dead_letters(failed))
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, "failures").inc(len(letters))
    return letters


def _counters(result) -> Dict[str, int]:
    counts = {name: 0 for name in COUNTERS}
    try:
        for counter in result.metrics().query(beam.metrics.MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]:
            if counter.key.metric.name in counts:
                value = counter.committed if counter.committed is not None else counter.attempted
                counts[counter.key.metric.name] += int(value or 0)
    except Exception:  # some runners report no metrics; the count file still checks the output
        logging.warning("the runner reported no Beam metrics")
    return counts


def run_batch_score(
    model_dir: str,
    owners: str,
    out_dir: str,
    k: int = 20,
    exclude_history: Optional[str] = None,
    output_format: str = "jsonl",
    brute_force: bool = False,
    beam_args: Optional[List[str]] = None,
    explain: bool = False,
) -> Dict:
    """Scores every owner of `owners` into `out_dir`; returns the summary (also written to summary.json).

    model_dir: a pushed model base (newest version used) or one version folder.
    owners: a history CSV (its distinct own_id), a folder with one, or an id list (one per line).
    out_dir: new, empty, or a previous batch-score output (the only kind it replaces).
    explain: also write why each influencer is recommended (records.EXPLAIN_COLUMNS).
    Raises ValueError on bad k / format, OutputFolderError for any other --out,
    NoOwnersError when the source has no owner, BatchScoreCountError if
    scored + dead-lettered != read; in every case an existing `out_dir` is left as it was.
    """
    options = pipeline_options(beam_args)  # a Beam option typo is refused before anything is read
    if output_format not in batch_output.FORMATS:
        raise UserError(f"output format must be one of {', '.join(batch_output.FORMATS)}, got {output_format!r}")
    version_dir = resolve_version_dir(model_dir)
    owners = resolve_owners_path(owners)
    for path, what in ((owners, "owners"), (exclude_history, "--exclude-history")):
        if path and "://" not in path and not os.path.isfile(path):
            raise FileNotFoundError(f"{what}: {path} is not a file")
    detect_format(owners)
    if exclude_history:
        check_hire_csv(exclude_history)
    catalog = check_k(k, version_dir, brute_force)
    batch_output.check_output_dir(out_dir, [owners, exclude_history, model_dir, version_dir])
    started = time.monotonic()
    with batch_output.publishing(out_dir) as tmp:
        pipeline = beam.Pipeline(options=options)
        progress_dir = os.path.join(tmp, progress.PROGRESS_DIR)
        build_pipeline(pipeline, version_dir, owners, tmp, k, exclude_history, output_format, brute_force, explain, progress_dir)
        with progress.watching(progress_dir):
            result = pipeline.run()
            result.wait_until_finish()
        if FileSystems.exists(progress_dir):
            FileSystems.delete([progress_dir])
        counts = batch_output.read_counts(tmp)
        if counts["read"] == 0:
            raise NoOwnersError(f"{owners}: no owner ids to score (an empty file or a header only); {out_dir} left unchanged")
        seconds = time.monotonic() - started
        summary = {
            "model_version_dir": version_dir,
            "owners_source": owners,
            "exclude_history": exclude_history,
            "k": k,
            "catalog_size": catalog,
            "retrieval": "brute_force" if brute_force else "scann",
            "format": output_format,
            "explain": explain,
            "owners_read": counts["read"],
            "owners_scored": counts["scored"],
            "dead_lettered": counts["dead_lettered"],
            "counters": _counters(result),
            "seconds": round(seconds, 2),
            "owners_per_second": round(counts["read"] / seconds, 1) if seconds > 0 else None,
            "beam_args": list(beam_args or default_beam_args()),
        }
        if counts["scored"] + counts["dead_lettered"] != counts["read"]:
            raise BatchScoreCountError(
                f"batch scoring lost owners: read {counts['read']}, scored {counts['scored']} + dead-lettered {counts['dead_lettered']}; "
                f"{out_dir} left unchanged"
            )
        FileSystems.delete([os.path.join(tmp, batch_output.COUNTS_FILE)])
        batch_output.write_summary(tmp, summary)
    return summary


def format_summary(summary: Dict) -> str:
    """The counters and totals, one per line, for the command line."""
    lines = [f"{name}: {value}" for name, value in summary["counters"].items()]
    lines.append(
        f"read {summary['owners_read']}, scored {summary['owners_scored']}, dead-lettered {summary['dead_lettered']} "
        f"in {summary['seconds']} s ({summary['owners_per_second']} owners/s, {summary['retrieval']})"
    )
    return "\n".join(lines)
