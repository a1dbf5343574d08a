"""Per-owner tables computed by tf.Transform analyzers and looked up in-graph.

Two tables, both keyed by `own_id` and built from the train split only:
- the profile: the notebook's mean over the owner's rows of
  `influencer_features * combined_rating`, plus the row count;
- the hire history: the influencer ids the owner hired.

tft has no per-key analyzers, and per-key results kept as graph constants hit
the 2 GB proto limit at a million owners, so each analyzer runs a Beam
CombinePerKey and writes a text asset (`own_id<TAB>v1,v2,...`); the transform
graph reads it into a hash table, so any `own_id` maps to its row at serving
time and the asset travels with the SavedModel.
"""

import os
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import tf_utils
from tensorflow_transform.beam import experimental as tft_beam_experimental

if TYPE_CHECKING:
    from models.owner_rows import OwnerRows

PROFILE_FILE = "owner_profiles.tsv"
HISTORY_FILE = "owner_history.tsv"
_FLOAT_FORMAT = "%.9g"


def _write_lines(lines: beam.PCollection, path: str) -> beam.PCollection:
    """Writes one text file; emits its path once the file is complete."""
    return (
        lines
        | "Write" >> beam.io.WriteToText(path, num_shards=1, shard_name_template="")
        | "WaitForWrite" >> beam.combiners.Count.Globally()
        | "Path" >> beam.Map(lambda _: path.encode("utf-8"))
    )


# The owner tables' combine is keyed by shard (owner id mod OWNER_SHARDS), not by owner: keyed by owner, a
# batch of rows yields a partial result per owner, Beam's pre-combine keeps 100k keys, and with more owners
# than that nearly every row reached the shuffle with its feature vector (Transform grew from 4.9 to 10.8
# GiB between 1M and 10M rows at 200k owners). Per shard, a worker holds one compacted table per shard:
# memory follows the owners, and on a cluster the shards spread over the workers.
OWNER_SHARDS = 16
_MIN_COMPACT_ROWS = 1 << 16  # buffered rows before a shard's table is compacted, at the least


def _by_shard(owner_ids: np.ndarray, values: np.ndarray) -> Iterator[Tuple[int, Tuple[np.ndarray, np.ndarray]]]:
    """A batch's rows (owner ids, per-row values) split by shard."""
    shards = owner_ids % OWNER_SHARDS
    for shard in np.unique(shards).tolist():
        mine = shards == shard
        yield shard, (owner_ids[mine], values[mine])


def summed_per_owner(owner_ids: np.ndarray, values: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(distinct owner ids, sorted; the sum of each one's value rows)."""
    order = np.argsort(owner_ids, kind="stable")
    owner_ids, values = owner_ids[order], values[order]
    starts = np.flatnonzero(np.r_[True, owner_ids[1:] != owner_ids[:-1]]) if len(owner_ids) else np.zeros(0, np.int64)
    return owner_ids[starts], np.add.reduceat(values, starts, axis=0) if len(starts) else values


def distinct_pairs(owner_ids: np.ndarray, influencer_ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The distinct (owner, influencer) pairs, sorted by owner, then influencer."""
    order = np.lexsort((influencer_ids, owner_ids))
    owner_ids, influencer_ids = owner_ids[order], influencer_ids[order]
    keep = np.r_[True, (owner_ids[1:] != owner_ids[:-1]) | (influencer_ids[1:] != influencer_ids[:-1])] if len(order) else np.zeros(0, bool)
    return owner_ids[keep], influencer_ids[keep]


class _Parts:
    """A shard's rows: what was compacted, and the parts added since."""

    def __init__(self):
        self.parts: List[Tuple[np.ndarray, np.ndarray]] = []
        self.kept = self.pending = 0

    def add(self, part: Tuple[np.ndarray, np.ndarray]) -> None:
        self.parts.append(part)
        self.pending += len(part[0])

    def compact(self, merge: Callable) -> "_Parts":
        if len(self.parts) > 1 or self.pending:
            part = merge(*(np.concatenate(columns) for columns in zip(*self.parts)))
            self.parts, self.kept, self.pending = [part], len(part[0]), 0
        return self


class _OwnerTable(beam.CombineFn):
    """A shard's rows compacted by `merge` (summed_per_owner or distinct_pairs) whenever those buffered since
    outnumber those kept: a table the size of the shard's owners, however many rows pass through it."""

    def __init__(self, merge: Callable):
        self._merge = merge

    def create_accumulator(self) -> _Parts:
        return _Parts()

    def add_input(self, acc: _Parts, part: Tuple[np.ndarray, np.ndarray]) -> _Parts:
        acc.add(part)
        return acc.compact(self._merge) if acc.pending > max(acc.kept, _MIN_COMPACT_ROWS) else acc

    def merge_accumulators(self, accs: Iterable[_Parts]) -> _Parts:
        merged = _Parts()
        for acc in accs:
            for part in acc.parts:
                merged.add(part)
        return merged.compact(self._merge)

    def compact(self, acc: _Parts) -> _Parts:  # before Beam ships an accumulator: one table, not its parts
        return acc.compact(self._merge)

    def extract_output(self, acc: _Parts) -> Tuple[np.ndarray, np.ndarray]:
        acc.compact(self._merge)
        return acc.parts[0] if acc.parts else (np.zeros(0, np.int64), np.zeros(0))


def _profile_rows(batch) -> Iterator[Tuple[int, Tuple[np.ndarray, np.ndarray]]]:
    """Per row: 1 (the count) and `label * features`, by shard."""
    owner_ids, labels, features = batch
    weighted = np.asarray(features, np.float64) * np.asarray(labels, np.float64).reshape(-1, 1)
    values = np.concatenate([np.ones((len(weighted), 1)), weighted], axis=1)
    return _by_shard(np.asarray(owner_ids, np.int64).reshape(-1), values)


def _profile_lines(table: Tuple[int, Tuple[np.ndarray, np.ndarray]]) -> Iterator[str]:
    _, (owner_ids, sums) = table
    for owner_id, row in zip(owner_ids.tolist(), sums):
        count = row[0]
        yield f"{owner_id}\t{int(count)}," + ",".join(_FLOAT_FORMAT % v for v in row[1:] / count)


class OwnerProfileAnalyzer(tft_beam_experimental.PTransformAnalyzer):
    """Writes `own_id<TAB>count,p_1,...,p_F`; outputs the file path.

    Module-level classes: TFX pickles them into Beam workers.
    """

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        lines = (
            pcoll
            | "ByShard" >> beam.FlatMap(_profile_rows)
            | "SumPerOwner" >> beam.CombinePerKey(_OwnerTable(summed_per_owner))
            | "Format" >> beam.FlatMap(_profile_lines)
        )
        return _write_lines(lines, os.path.join(self.base_temp_dir, PROFILE_FILE))


def _hire_rows(batch) -> Iterator[Tuple[int, Tuple[np.ndarray, np.ndarray]]]:
    owner_ids, influencer_ids = (np.asarray(x, np.int64).reshape(-1) for x in batch)
    return _by_shard(*distinct_pairs(owner_ids, influencer_ids))


def _history_lines(table: Tuple[int, Tuple[np.ndarray, np.ndarray]]) -> Iterator[str]:
    _, (owner_ids, influencer_ids) = table
    starts = np.flatnonzero(np.r_[True, owner_ids[1:] != owner_ids[:-1]]) if len(owner_ids) else []
    for owner_id, hires in zip(owner_ids[starts].tolist(), np.split(influencer_ids, starts[1:])):
        yield f"{owner_id}\t{','.join(str(i) for i in hires.tolist())}"


class OwnerHistoryAnalyzer(tft_beam_experimental.PTransformAnalyzer):
    """Writes `own_id<TAB>inf_id,inf_id,...` (sorted, unique); outputs the path."""

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        lines = (
            pcoll
            | "ByShard" >> beam.FlatMap(_hire_rows)
            | "UnionPerOwner" >> beam.CombinePerKey(_OwnerTable(distinct_pairs))
            | "Format" >> beam.FlatMap(_history_lines)
        )
        return _write_lines(lines, os.path.join(self.base_temp_dir, HISTORY_FILE))


def _lookup(analyzer_path: tf.Tensor, owner_id: tf.Tensor) -> tf.Tensor:
    """The packed value string of each owner; '' for owners not in the table."""

    def construct_table(asset_path):
        initializer = tf.lookup.TextFileInitializer(
            asset_path, key_dtype=tf.int64, key_index=0, value_dtype=tf.string, value_index=1, delimiter="\t"
        )
        return tf.lookup.StaticHashTable(initializer, default_value="")

    packed, _ = tf_utils.construct_and_lookup_table(construct_table, analyzer_path, owner_id)
    return packed


def _flat_int64(x: tf.Tensor, dtype=tf.int64) -> tf.Tensor:
    return tf.cast(tf.reshape(x, [-1]), dtype)


def owner_profile(
    owner_id: tf.Tensor, label: tf.Tensor, influencer_features: tf.Tensor
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Each row's owner profile [B, F] and train-row count [B].

    Must be called inside a `preprocessing_fn`. An owner without train rows
    (new, or only in eval) gets the global mean of `label * features` over all
    train rows as its profile and a count of 0, so callers can tell.
    """
    dim = influencer_features.shape[-1]
    if dim is None:
        raise ValueError("influencer_features needs a static width")
    zeros = ",".join(["0"] * (dim + 1))
    owner_id = _flat_int64(owner_id)
    label = _flat_int64(label, tf.float32)
    (path,) = tft.experimental.ptransform_analyzer(
        inputs=[owner_id, label, influencer_features],
        ptransform=OwnerProfileAnalyzer(),
        output_dtypes=[tf.string],
        output_shapes=[[]],
        # Placeholder asset contents while the graph is traced before analysis.
        output_asset_default_values=[f"-1\t{zeros}".encode("utf-8")],
        name="owner_profile",
    )
    global_mean = tf.cast(
        tft.mean(influencer_features * label[:, None], reduce_instance_dims=False, name="global_profile_mean"),
        tf.float32,
    )
    packed = _lookup(path, owner_id)
    found = tf.not_equal(packed, "")
    numbers = tf.strings.to_number(tf.strings.split(tf.where(found, packed, zeros), ","), tf.float32)
    numbers = numbers.to_tensor(shape=[None, dim + 1])
    profile = tf.where(found[:, None], numbers[:, 1:], global_mean[None, :])
    return profile, numbers[:, 0]


def owner_history(owner_id: tf.Tensor, influencer_id: tf.Tensor) -> tf.RaggedTensor:
    """The influencer ids each row's owner hired in train ([B, None] int64)."""
    owner_id = _flat_int64(owner_id)
    (path,) = tft.experimental.ptransform_analyzer(
        inputs=[owner_id, _flat_int64(influencer_id)],
        ptransform=OwnerHistoryAnalyzer(),
        output_dtypes=[tf.string],
        output_shapes=[[]],
        output_asset_default_values=[b"-1\t0"],
        name="owner_history",
    )
    tokens = tf.strings.split(_lookup(path, owner_id), ",")
    tokens = tf.ragged.boolean_mask(tokens, tf.not_equal(tokens, ""))
    return tf.strings.to_number(tokens, tf.int64)


# -- Served owner tables --------------------------------------------------------
# The gate measures a model whose tables hold the train split only (above). The
# version that is pushed knows every row it was given: these tables are built in
# the Trainer from all splits and looked up in the exported graph instead.
SERVED_HISTORY_FILE = "served_owner_history.tsv"  # in assets.extra/ of the pushed version: what batch scoring excludes


def served_tables(owners: "OwnerRows", catalog_features: np.ndarray) -> Dict[str, np.ndarray]:
    """Per owner over its rows: the profile (mean of features * label), the row count and the distinct hires (ids)."""
    return {
        "owner_ids": owners.owner_ids.astype(np.int64),
        "profiles": owners.profiles(catalog_features),
        "counts": owners.row_counts.astype(np.float32),
        "hires": owners.catalog_ids[owners.hires.indices].astype(np.int64),
        "hire_splits": owners.hires.indptr.astype(np.int64),
    }


def write_served_history(path: str, tables: Dict[str, np.ndarray]) -> None:
    """The served hires as `own_id<TAB>inf,inf,...` lines (the train-hire asset's format)."""
    splits = tables["hire_splits"]
    with tf.io.gfile.GFile(path, "w") as handle:
        for row, owner in enumerate(tables["owner_ids"].tolist()):
            hires = tables["hires"][splits[row] : splits[row + 1]]
            handle.write(f"{owner}\t{','.join(str(i) for i in hires.tolist())}\n")
