"""Batch scoring output: sharded rows in one of four formats, dead letters, atomic publish.

Layout of an output folder:
  scores/part-SSSSS-of-NNNNN.<ext>   one row per scored owner: owner_id, influencer_ids, scores (best first)
  dead_letter/part-SSSSS-of-NNNNN.jsonl   {"owner", "file", "line", "reason"} per owner not scored
  summary.json   counts, settings and timing (written last)
"""

import contextlib
import csv
import glob
import json
import os
import shutil
import socket
import uuid
from typing import Dict, Iterator, List, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from data.atomic import atomic_directory
from data.errors import OutputFolderError
from components.batch_scorer.records import FLOATS, FORMATS, INT, INTS, columns
SCORES_DIR = "scores"
DEAD_LETTER_DIR = "dead_letter"
SUMMARY_FILE = "summary.json"
COUNTS_FILE = "_counts.json"
WRITER_FILE = "_writer.json"  # {"host", "pid"} of the run writing a staging folder
# summary.json's mark: only a folder carrying it (and nothing but this layout) is ever replaced.
PRODUCER_KEY, PRODUCER = "produced_by", "influencer-recs batch-score"
LAYOUT = frozenset({SCORES_DIR, DEAD_LETTER_DIR, SUMMARY_FILE})
_SHARD = "part"


def csv_header(explain: bool = False) -> str:
    """The CSV header; list cells hold their values space-separated."""
    return ",".join(name for name, _ in columns(explain))


def _to_csv(row: Dict, explain: bool) -> str:
    cell = lambda value, kind: str(value) if kind == INT else " ".join(str(v) if kind == INTS else f"{v:.6g}" for v in value)
    return ",".join(cell(row[name], kind) for name, kind in columns(explain))


def _to_example(row: Dict, explain: bool) -> bytes:
    import tensorflow as tf

    def feature(value, kind):
        if kind == FLOATS:
            return tf.train.Feature(float_list=tf.train.FloatList(value=value))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value] if kind == INT else value))

    return tf.train.Example(features=tf.train.Features(feature={name: feature(row[name], kind) for name, kind in columns(explain)})).SerializeToString()


def _parquet_schema(explain: bool):
    import pyarrow as pa

    types = {INT: pa.int64(), INTS: pa.list_(pa.int64()), FLOATS: pa.list_(pa.float32())}
    return pa.schema([(name, types[kind]) for name, kind in columns(explain)])


def write_scores(rows: beam.PCollection, directory: str, output_format: str, explain: bool = False) -> beam.PCollection:
    """Sharded rows under `directory/scores/` (with the explanation columns when `explain`); returns the written file names."""
    prefix = os.path.join(directory, SCORES_DIR, _SHARD)
    if output_format == "jsonl":
        return rows | "ToJson" >> beam.Map(json.dumps) | "WriteJsonl" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")
    if output_format == "csv":
        return rows | "ToCsv" >> beam.Map(_to_csv, explain) | "WriteCsv" >> beam.io.WriteToText(prefix, file_name_suffix=".csv", header=csv_header(explain))
    if output_format == "tfrecord":
        return rows | "ToExample" >> beam.Map(_to_example, explain) | "WriteTFRecord" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=".tfrecord")
    if output_format == "parquet":
        return rows | "WriteParquet" >> beam.io.WriteToParquet(prefix, _parquet_schema(explain), file_name_suffix=".parquet")
    raise ValueError(f"output format must be one of {', '.join(FORMATS)}, got {output_format!r}")


def write_dead_letters(dead: beam.PCollection, directory: str) -> beam.PCollection:
    return dead | "DeadToJson" >> beam.Map(json.dumps) | "WriteDeadLetter" >> beam.io.WriteToText(
        os.path.join(directory, DEAD_LETTER_DIR, _SHARD), file_name_suffix=".jsonl"
    )


def write_counts(counts: Dict[str, beam.PCollection], directory: str) -> None:
    """One small JSON file {name: element count}; the driver checks it after the run (runner-independent)."""
    tagged = [
        pcoll | f"Count_{name}" >> beam.combiners.Count.Globally() | f"Tag_{name}" >> beam.Map(lambda n, name=name: (name, n))
        for name, pcoll in counts.items()
    ]
    (
        tagged
        | "FlattenCounts" >> beam.Flatten()
        | "CountsDict" >> beam.combiners.ToDict()
        | "CountsJson" >> beam.Map(json.dumps)
        | "WriteCounts" >> beam.io.WriteToText(os.path.join(directory, COUNTS_FILE), num_shards=1, shard_name_template="")
    )


def read_counts(directory: str) -> Dict[str, int]:
    with FileSystems.open(os.path.join(directory, COUNTS_FILE)) as handle:
        return json.loads(handle.read().decode())


def read_scores(directory: str) -> List[Dict]:
    """Every row of a finished output folder, whatever its format (for checks and small outputs)."""
    files = sorted(glob.glob(os.path.join(directory, SCORES_DIR, f"{_SHARD}-*")))
    rows: List[Dict] = []
    for path in files:
        if path.endswith(".jsonl"):
            with open(path) as handle:
                rows += [json.loads(line) for line in handle if line.strip()]
        elif path.endswith(".csv"):
            kinds = dict(columns(explain=True))
            parse = {INT: int, INTS: lambda cell: [int(v) for v in cell.split()], FLOATS: lambda cell: [float(v) for v in cell.split()]}
            with open(path, newline="") as handle:
                rows += [{name: parse[kinds[name]](cell) for name, cell in row.items()} for row in csv.DictReader(handle)]
        elif path.endswith(".tfrecord"):
            import tensorflow as tf

            kinds = dict(columns(explain=True))
            for record in tf.data.TFRecordDataset([path]).as_numpy_iterator():
                feature = tf.train.Example.FromString(record).features.feature
                row = {}
                for name in feature:
                    values = list(feature[name].float_list.value if kinds[name] == FLOATS else feature[name].int64_list.value)
                    row[name] = int(values[0]) if kinds[name] == INT else values
                rows.append(row)
        elif path.endswith(".parquet"):
            import pyarrow.parquet as pq

            rows += pq.read_table(path).to_pylist()
    return rows


def read_dead_letters(directory: str) -> List[Dict]:
    rows: List[Dict] = []
    for path in sorted(glob.glob(os.path.join(directory, DEAD_LETTER_DIR, f"{_SHARD}-*"))):
        with open(path) as handle:
            rows += [json.loads(line) for line in handle if line.strip()]
    return rows


def write_summary(directory: str, summary: Dict) -> None:
    """summary.json, with the mark that lets a later run replace this folder."""
    with FileSystems.create(os.path.join(directory, SUMMARY_FILE)) as handle:
        handle.write(json.dumps({**summary, PRODUCER_KEY: PRODUCER}, indent=2, sort_keys=True).encode())


def _is_inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _entries(out_dir: str) -> Optional[List[str]]:
    """Top-level names under `out_dir`; None if it does not exist."""
    if "://" not in out_dir:
        if not os.path.lexists(out_dir):
            return None
        if not os.path.isdir(out_dir) or os.path.islink(out_dir):
            raise OutputFolderError(f"--out {out_dir}: expected a folder for the batch scores, found a file or link")
        return os.listdir(out_dir)
    matched = FileSystems.match([out_dir.rstrip("/") + "/**"])[0].metadata_list
    if not matched:
        return None
    return sorted({m.path[len(out_dir.rstrip("/")) + 1 :].split("/", 1)[0] for m in matched})


def _is_previous_output(out_dir: str, names: Sequence[str]) -> bool:
    if SUMMARY_FILE not in names or not set(names) <= LAYOUT:
        return False
    try:
        with FileSystems.open(os.path.join(out_dir, SUMMARY_FILE)) as handle:
            summary = json.loads(handle.read().decode())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get(PRODUCER_KEY) == PRODUCER


def check_output_dir(out_dir: str, inputs: Sequence[str]) -> None:
    """Refuses an --out that holds anything but a previous batch-score result, or that contains an input.

    The inputs (owners file, --exclude-history, the model) can never be inside
    the output: replacing it would delete them.
    """
    for path in filter(None, inputs):
        remote = "://" in path or "://" in out_dir
        inside = path.rstrip("/").startswith(out_dir.rstrip("/") + "/") if remote else _is_inside(path, out_dir)
        if inside:
            raise OutputFolderError(f"--out {out_dir} contains the input {path}; choose an output folder outside the inputs and the model")
    names = _entries(out_dir)
    if not names or _is_previous_output(out_dir, names):
        return
    shown = ", ".join(sorted(names)[:5]) + (" ..." if len(names) > 5 else "")
    raise OutputFolderError(
        f"--out {out_dir} is not empty and is not a previous batch-score output (a {SUMMARY_FILE} marked {PRODUCER!r} "
        f"with only {', '.join(sorted(LAYOUT))}); it holds {shown}. Choose a new or empty folder; nothing was changed."
    )


def _staging_prefix(out_dir: str) -> str:
    return f".{os.path.basename(out_dir.rstrip('/'))}."


def _mark_writer(staging: str) -> None:
    with FileSystems.create(os.path.join(staging, WRITER_FILE)) as handle:
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode())


def _writer_is_gone(staging: str) -> bool:
    """True when the staging folder's run was on this host and its process is dead (killed or crashed)."""
    try:
        with FileSystems.open(os.path.join(staging, WRITER_FILE)) as handle:
            writer = json.loads(handle.read().decode())
    except (OSError, ValueError):
        return False  # not ours, or a run that is still starting: leave it
    if writer.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(writer["pid"]), 0)
    except ProcessLookupError:
        return True
    except (OSError, KeyError, ValueError):
        return False
    return False


def clean_stale_staging(out_dir: str) -> List[str]:
    """Removes the hidden staging folders that killed runs into `out_dir` left beside it; returns them."""
    if "://" in out_dir:
        parent = out_dir.rstrip("/").rsplit("/", 1)[0]
        matched = FileSystems.match([f"{parent}/{_staging_prefix(out_dir)}incomplete-*/{WRITER_FILE}"])[0].metadata_list
        stale = [m.path[: -len(WRITER_FILE) - 1] for m in matched]
        stale = [path for path in stale if _writer_is_gone(path)]
        for path in stale:
            FileSystems.delete([path + "/"])
        return stale
    parent = os.path.dirname(os.path.abspath(out_dir))
    stale = []
    for path in glob.glob(os.path.join(parent, glob.escape(_staging_prefix(out_dir)) + "*.tmp")):
        if os.path.isdir(path) and not os.path.islink(path) and _writer_is_gone(path):
            shutil.rmtree(path, ignore_errors=True)
            stale.append(path)
    return stale


@contextlib.contextmanager
def publishing(out_dir: str) -> Iterator[str]:
    """A hidden sibling folder to write into; it replaces `out_dir` only when the block succeeds.

    Call check_output_dir first: only a previous batch-score output is replaced.
    Local paths: renamed into place (an old output stays whole until then).
    Object stores (gs://, s3://) have no directory rename: files are copied
    over after success and summary.json is written last, so readers wait for it.
    """
    clean_stale_staging(out_dir)
    if "://" not in out_dir:
        with atomic_directory(out_dir) as tmp:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide the output from other users
            _mark_writer(tmp)
            yield tmp
            os.remove(os.path.join(tmp, WRITER_FILE))
        return
    parent, name = out_dir.rstrip("/").rsplit("/", 1)
    staging = f"{parent}/.{name}.incomplete-{uuid.uuid4().hex[:8]}"
    try:
        _mark_writer(staging)
        yield staging
        FileSystems.delete([os.path.join(staging, WRITER_FILE)])
        if FileSystems.exists(out_dir + "/"):
            FileSystems.delete([out_dir + "/"])
        files = [m.path for m in FileSystems.match([staging + "/**"])[0].metadata_list]
        ordered = sorted(files, key=lambda p: p.endswith(SUMMARY_FILE))  # summary last
        for path in ordered:
            FileSystems.rename([path], [out_dir + path[len(staging):]])
    finally:
        with contextlib.suppress(Exception):
            FileSystems.delete([staging + "/"])
