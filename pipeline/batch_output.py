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
import uuid
from typing import Dict, Iterator, List

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from data.atomic import atomic_directory
from pipeline.config import BATCH_SCORE_FORMATS

FORMATS = BATCH_SCORE_FORMATS
SCORES_DIR = "scores"
DEAD_LETTER_DIR = "dead_letter"
SUMMARY_FILE = "summary.json"
COUNTS_FILE = "_counts.json"
OWNER_COLUMN, IDS_COLUMN, SCORES_COLUMN = "owner_id", "influencer_ids", "scores"
CSV_HEADER = f"{OWNER_COLUMN},{IDS_COLUMN},{SCORES_COLUMN}"  # ids and scores space-separated in their cell
_SHARD = "part"


def _to_csv(row: Dict) -> str:
    return f"{row[OWNER_COLUMN]},{' '.join(str(i) for i in row[IDS_COLUMN])},{' '.join(f'{s:.6g}' for s in row[SCORES_COLUMN])}"


def _to_example(row: Dict) -> bytes:
    import tensorflow as tf

    feature = {
        OWNER_COLUMN: tf.train.Feature(int64_list=tf.train.Int64List(value=[row[OWNER_COLUMN]])),
        IDS_COLUMN: tf.train.Feature(int64_list=tf.train.Int64List(value=row[IDS_COLUMN])),
        SCORES_COLUMN: tf.train.Feature(float_list=tf.train.FloatList(value=row[SCORES_COLUMN])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _parquet_schema():
    import pyarrow as pa

    return pa.schema([(OWNER_COLUMN, pa.int64()), (IDS_COLUMN, pa.list_(pa.int64())), (SCORES_COLUMN, pa.list_(pa.float32()))])


def write_scores(rows: beam.PCollection, directory: str, output_format: str) -> beam.PCollection:
    """Sharded rows under `directory/scores/`; returns the written file names."""
    prefix = os.path.join(directory, SCORES_DIR, _SHARD)
    if output_format == "jsonl":
        return rows | "ToJson" >> beam.Map(json.dumps) | "WriteJsonl" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")
    if output_format == "csv":
        return rows | "ToCsv" >> beam.Map(_to_csv) | "WriteCsv" >> beam.io.WriteToText(prefix, file_name_suffix=".csv", header=CSV_HEADER)
    if output_format == "tfrecord":
        return rows | "ToExample" >> beam.Map(_to_example) | "WriteTFRecord" >> beam.io.WriteToTFRecord(prefix, file_name_suffix=".tfrecord")
    if output_format == "parquet":
        return rows | "WriteParquet" >> beam.io.WriteToParquet(prefix, _parquet_schema(), file_name_suffix=".parquet")
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
            with open(path, newline="") as handle:
                for row in csv.DictReader(handle):
                    rows.append(
                        {
                            OWNER_COLUMN: int(row[OWNER_COLUMN]),
                            IDS_COLUMN: [int(i) for i in row[IDS_COLUMN].split()],
                            SCORES_COLUMN: [float(s) for s in row[SCORES_COLUMN].split()],
                        }
                    )
        elif path.endswith(".tfrecord"):
            import tensorflow as tf

            for record in tf.data.TFRecordDataset([path]).as_numpy_iterator():
                feature = tf.train.Example.FromString(record).features.feature
                rows.append(
                    {
                        OWNER_COLUMN: int(feature[OWNER_COLUMN].int64_list.value[0]),
                        IDS_COLUMN: list(feature[IDS_COLUMN].int64_list.value),
                        SCORES_COLUMN: list(feature[SCORES_COLUMN].float_list.value),
                    }
                )
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
    with FileSystems.create(os.path.join(directory, SUMMARY_FILE)) as handle:
        handle.write(json.dumps(summary, indent=2, sort_keys=True).encode())


@contextlib.contextmanager
def publishing(out_dir: str) -> Iterator[str]:
    """A hidden sibling folder to write into; it replaces `out_dir` only when the block succeeds.

    Local paths: renamed into place (an old output stays whole until then).
    Object stores (gs://, s3://) have no directory rename: files are copied
    over after success and summary.json is written last, so readers wait for it.
    """
    if "://" not in out_dir:
        with atomic_directory(out_dir) as tmp:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's 0700 would hide the output from other users
            yield tmp
        return
    parent, name = out_dir.rstrip("/").rsplit("/", 1)
    staging = f"{parent}/.{name}.incomplete-{uuid.uuid4().hex[:8]}"
    try:
        yield staging
        if FileSystems.exists(out_dir + "/"):
            FileSystems.delete([out_dir + "/"])
        files = [m.path for m in FileSystems.match([staging + "/**"])[0].metadata_list]
        ordered = sorted(files, key=lambda p: p.endswith(SUMMARY_FILE))  # summary last
        for path in ordered:
            FileSystems.rename([path], [out_dir + path[len(staging):]])
    finally:
        with contextlib.suppress(Exception):
            FileSystems.delete([staging + "/"])
