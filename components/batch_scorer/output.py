"""Batch scoring output: sharded rows in one of four formats, dead letters, atomic publish.

Layout of an output folder (one file of each kind per shard, written whole by the shard's step):
  scores/part-SSSSS-of-NNNNN.<ext>   one row per scored owner: owner_id, influencer_ids, scores (best first)
  dead_letter/part-SSSSS-of-NNNNN.jsonl   {"owner", "file", "line", "reason"} per owner not scored
  summary.json   counts, settings and timing (written last)
"""

import contextlib
import csv
import glob
import io
import json
import os
import shutil
import socket
import tempfile
import uuid
from typing import Dict, Iterator, List, Optional, Sequence

from apache_beam.io.filesystems import FileSystems

from data.atomic import atomic_directory
from data.errors import OutputFolderError
from components.batch_scorer.records import FLOATS, FORMATS, INT, INTS, columns
SCORES_DIR = "scores"
DEAD_LETTER_DIR = "dead_letter"
SUMMARY_FILE = "summary.json"
COUNTS_DIR = "_counts"  # one JSON per shard, written last by the shard: the driver checks and removes them
TMP_DIR = "_tmp"  # files being written, renamed into place when whole
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


def _tfrecords(records: Sequence[bytes]) -> bytes:
    """TFRecord framing (what WriteToTFRecord and tf.data read), written with TensorFlow's own writer."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "shard.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for record in records:
                writer.write(record)
        with open(path, "rb") as handle:
            return handle.read()


def _parquet(rows: Sequence[Dict], explain: bool) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(list(rows), schema=_parquet_schema(explain)), buffer)
    return buffer.getvalue()


def _lines(texts: Sequence[str], header: Optional[str] = None) -> bytes:
    return "".join(f"{text}\n" for text in ([header] if header else []) + list(texts)).encode()


def encode_scores(rows: Sequence[Dict], output_format: str, explain: bool = False) -> bytes:
    """One scores file's bytes in `output_format` (with the explanation columns when `explain`)."""
    if output_format == "jsonl":
        return _lines([json.dumps(row) for row in rows])
    if output_format == "csv":
        return _lines([_to_csv(row, explain) for row in rows], header=csv_header(explain))
    if output_format == "tfrecord":
        return _tfrecords([_to_example(row, explain) for row in rows])
    if output_format == "parquet":
        return _parquet(rows, explain)
    raise ValueError(f"output format must be one of {', '.join(FORMATS)}, got {output_format!r}")


def shard_name(shard: int, shards: int, extension: str) -> str:
    return f"{_SHARD}-{shard:05d}-of-{shards:05d}.{extension}"


def _write_atomically(directory: str, relative: str, payload: bytes) -> None:
    """Written under a unique name in the staging folder's TMP_DIR, then renamed: a retried shard replaces, never mixes."""
    staged = os.path.join(directory, TMP_DIR, f"{uuid.uuid4().hex}-{os.path.basename(relative)}")
    with FileSystems.create(staged) as handle:
        handle.write(payload)
    final = os.path.join(directory, relative)
    if "://" not in final:
        os.makedirs(os.path.dirname(final), exist_ok=True)  # object stores have no folders to make
    elif FileSystems.exists(final):
        FileSystems.delete([final])
    FileSystems.rename([staged], [final])


def write_shard(directory: str, shard: int, shards: int, rows: Sequence[Dict], dead: Sequence[Dict], output_format: str,
                explain: bool, counts: Dict[str, int]) -> None:
    """One shard's scores, dead letters and counts under the staging `directory`; the counts last, as the shard's proof of completion."""
    _write_atomically(directory, os.path.join(SCORES_DIR, shard_name(shard, shards, output_format)), encode_scores(rows, output_format, explain))
    _write_atomically(directory, os.path.join(DEAD_LETTER_DIR, shard_name(shard, shards, "jsonl")), _lines([json.dumps(d) for d in dead]))
    _write_atomically(directory, os.path.join(COUNTS_DIR, shard_name(shard, shards, "json")), json.dumps(counts).encode())


class MissingShardsError(RuntimeError):
    """A shard of the job never finished (its counts file is missing): the output would lack its owners."""


def read_counts(directory: str, shards: int) -> Dict[str, int]:
    """Every shard's counts, summed; raises MissingShardsError unless all `shards` wrote theirs."""
    found = FileSystems.match([os.path.join(directory, COUNTS_DIR, f"{_SHARD}-*.json")])[0].metadata_list
    names = {m.path.rstrip("/").rsplit("/", 1)[-1] for m in found}
    missing = sorted(set(range(shards)) - {s for s in range(shards) if shard_name(s, shards, "json") in names})
    if missing:
        raise MissingShardsError(f"{len(missing)} of {shards} shards wrote no counts (shards {missing[:5]}{' ...' if len(missing) > 5 else ''})")
    totals: Dict[str, int] = {}
    for meta in found:
        with FileSystems.open(meta.path) as handle:
            for name, value in json.loads(handle.read().decode()).items():
                totals[name] = totals.get(name, 0) + int(value)
    return totals


def drop_bookkeeping(directory: str) -> None:
    """The counts and staged files of a finished job, which are not part of the published layout."""
    for name in (COUNTS_DIR, TMP_DIR):
        path = os.path.join(directory, name)
        if FileSystems.exists(path):
            FileSystems.delete([path])


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
