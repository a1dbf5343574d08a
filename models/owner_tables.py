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
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, Tuple

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


def _partial_sums(batch: Tuple[np.ndarray, np.ndarray, np.ndarray]) -> Iterator[Tuple[int, np.ndarray]]:
    """Sum `label * features` per owner inside one batch, before the shuffle."""
    owner_ids, labels, features = batch
    owner_ids = np.asarray(owner_ids).reshape(-1)
    weighted = np.asarray(features, np.float64) * np.asarray(labels, np.float64).reshape(-1, 1)
    keys, inverse = np.unique(owner_ids, return_inverse=True)
    sums = np.zeros((len(keys), weighted.shape[1] + 1), np.float64)
    np.add.at(sums[:, 1:], inverse, weighted)
    np.add.at(sums[:, 0], inverse, 1.0)
    for key, row in zip(keys.tolist(), sums):
        yield key, row


def _format_profile(item: Tuple[int, np.ndarray]) -> str:
    owner_id, sums = item
    count = sums[0]
    values = [str(int(count))] + [_FLOAT_FORMAT % v for v in sums[1:] / count]
    return f"{owner_id}\t{','.join(values)}"


class _SumArrays(beam.CombineFn):
    def create_accumulator(self):
        return None

    def add_input(self, acc, row):
        return row.copy() if acc is None else acc + row

    def merge_accumulators(self, accs: Iterable):
        total = None
        for acc in accs:
            if acc is not None:
                total = acc.copy() if total is None else total + acc
        return total

    def extract_output(self, acc):
        return acc


class OwnerProfileAnalyzer(tft_beam_experimental.PTransformAnalyzer):
    """Writes `own_id<TAB>count,p_1,...,p_F`; outputs the file path.

    Module-level classes: TFX pickles them into Beam workers.
    """

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        lines = (
            pcoll
            | "PartialSums" >> beam.FlatMap(_partial_sums)
            | "SumPerOwner" >> beam.CombinePerKey(_SumArrays())
            | "Format" >> beam.Map(_format_profile)
        )
        return _write_lines(lines, os.path.join(self.base_temp_dir, PROFILE_FILE))


def _partial_hires(batch: Tuple[np.ndarray, np.ndarray]) -> Iterator[Tuple[int, np.ndarray]]:
    """Each owner's distinct hires inside one batch (sorted int64), before the shuffle."""
    owner_ids, influencer_ids = (np.asarray(x, np.int64).reshape(-1) for x in batch)
    pairs = np.unique(np.stack([owner_ids, influencer_ids], axis=1), axis=0)  # sorted by owner, then influencer
    starts = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
    for owner, hires in zip(pairs[starts, 0].tolist(), np.split(pairs[:, 1], starts[1:])):
        yield owner, hires


class _UnionArrays(beam.CombineFn):
    """The sorted union of int64 arrays: 8 bytes a distinct pair, where grouping the rows held every row as a tuple."""

    def create_accumulator(self):
        return np.zeros(0, np.int64)

    def add_input(self, acc, hires):
        return np.union1d(acc, hires)

    def merge_accumulators(self, accs: Iterable):
        accs = list(accs)
        return np.unique(np.concatenate(accs)) if accs else np.zeros(0, np.int64)

    def extract_output(self, acc):
        return acc


def _format_history(item: Tuple[int, np.ndarray]) -> str:
    owner_id, influencer_ids = item
    return f"{owner_id}\t{','.join(str(i) for i in influencer_ids.tolist())}"


class OwnerHistoryAnalyzer(tft_beam_experimental.PTransformAnalyzer):
    """Writes `own_id<TAB>inf_id,inf_id,...` (sorted, unique); outputs the path."""

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        lines = (
            pcoll
            | "PartialHires" >> beam.FlatMap(_partial_hires)
            | "UnionPerOwner" >> beam.CombinePerKey(_UnionArrays())
            | "Format" >> beam.Map(_format_history)
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
