"""Batch scoring: top-K influencers for many owners with Apache Beam, from a pushed model.

input files (owners, hires) -> (shard, item) by owner -> GroupByKey -> per shard: query
embeddings (stock model), ScaNN / exact top-K and the shard's files; published atomically,
with a dead-letter output and a summary whose counts are checked against what was read.
"""

import math
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from data.errors import UserError
from data.paths import absolute_path
from components.batch_scorer.retrieval import index_fetch, load_catalog
from components.batch_scorer.shard import COUNTERS, ScoreShard
from models.owner_tables import HISTORY_FILE as TRAIN_HIRES_ASSET, SERVED_HISTORY_FILE
from serving.versions import resolve_version_dir
from components.batch_scorer import output as batch_output, progress
from components.batch_scorer.owners import ReadInputs, check_hire_csv, detect_format, input_files, resolve_owners_path
from components.beam_options import check_beam_args, default_beam_args

# Shards of a job: one per SHARD_BYTES of input files, at least MIN_SHARDS. A shard is
# one worker's unit of memory (its owners, their hires, their results) and of output (one file per kind).
MIN_SHARDS, SHARD_BYTES = 4, 32 * 2**20


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


def shard_count(paths: Sequence[Optional[str]]) -> int:
    """Shards for the inputs: one per SHARD_BYTES of input, at least MIN_SHARDS (so every worker has one)."""
    size = 0
    for path in filter(None, paths):
        try:
            size += FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        except (IndexError, OSError):
            continue
    return max(MIN_SHARDS, math.ceil(size / SHARD_BYTES))


def known_hires_file(version_dir: str) -> Optional[str]:
    """What `recommend` excludes: the pushed version's hires from every row, or (older or measured exports) Transform's train hires."""
    candidates = [os.path.join(version_dir, "assets.extra", SERVED_HISTORY_FILE), os.path.join(version_dir, "assets", TRAIN_HIRES_ASSET)]
    return next((path for path in candidates if FileSystems.exists(path)), None)


def build_pipeline(
    pipeline: beam.Pipeline, version_dir: str, files: Sequence[Tuple[str, str]], out_dir: str, k: int, output_format: str, brute_force: bool,
    explain: bool = False, progress_dir: Optional[str] = None, shards: int = MIN_SHARDS,
) -> None:
    """Adds the batch scoring chain for `files` (owners.input_files) to `pipeline`, writing `shards` shards under `out_dir`.

    One chain, Create -> ParDo -> GroupByKey -> ParDo, with no Read, no second branch and no file sink: the
    shapes every runner runs, Beam's DaskRunner included (docs/batch-scoring.md, "Dask").
    """
    (
        pipeline
        | "InputFiles" >> beam.Create(files)
        | "ReadInputs" >> beam.ParDo(ReadInputs(shards, progress_dir))
        | "ByShard" >> beam.GroupByKey()
        | "ScoreShards" >> beam.ParDo(ScoreShard(version_dir, out_dir, shards, k, brute_force, output_format, explain, progress_dir))
    )


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
    # Workers may start in another folder (a Dask worker, a remote runner's): they get absolute paths.
    model_dir, owners, out_dir, exclude_history = (absolute_path(p) for p in (model_dir, owners, out_dir, exclude_history))
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
        files = input_files(owners, known_hires_file(version_dir), exclude_history)
        shards = shard_count([path for _, path in files])
        build_pipeline(pipeline, version_dir, files, tmp, k, output_format, brute_force, explain, progress_dir, shards)
        with progress.watching(progress_dir):
            pipeline.run().wait_until_finish()
        if FileSystems.exists(progress_dir):
            FileSystems.delete([progress_dir])
        counts = batch_output.read_counts(tmp, shards)
        if counts["owners_read"] == 0:
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
            "shards": shards,
            "owners_read": counts["owners_read"],
            "owners_scored": counts["owners_scored"],
            "dead_lettered": counts["dead_lettered"],
            "counters": {name: counts[name] for name in COUNTERS},
            "seconds": round(seconds, 2),
            "owners_per_second": round(counts["owners_read"] / seconds, 1) if seconds > 0 else None,
            "beam_args": list(beam_args or default_beam_args()),
        }
        if counts["owners_scored"] + counts["dead_lettered"] != counts["owners_read"]:
            raise BatchScoreCountError(
                f"batch scoring lost owners: read {counts['owners_read']}, scored {counts['owners_scored']} + dead-lettered "
                f"{counts['dead_lettered']}; {out_dir} left unchanged"
            )
        batch_output.drop_bookkeeping(tmp)
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
