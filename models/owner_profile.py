"""Per-owner profile as a tf.Transform analyzer plus an in-graph lookup.

The notebook's owner profile is, per owner, the mean over its history rows of
`influencer_features * combined_rating`. tft has no per-key weighted mean, and
per-key results kept as graph constants hit the 2 GB proto limit at a million
owners, so the analyzer runs a Beam CombinePerKey and writes a text asset (one
line per owner: `own_id<TAB>count,p_1,...,p_F`); the transform graph reads it
into a hash table, so any `own_id` maps to its profile at serving time.
"""

import os
from typing import Iterable, Iterator, List, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_transform import tf_utils
from tensorflow_transform.beam import experimental as tft_beam_experimental

PROFILE_FILE = "owner_profiles.tsv"
_FLOAT_FORMAT = "%.9g"


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


def _format_line(item: Tuple[int, np.ndarray]) -> str:
    owner_id, sums = item
    count = sums[0]
    values = [str(int(count))] + [_FLOAT_FORMAT % v for v in sums[1:] / count]
    return f"{owner_id}\t{','.join(values)}"


class OwnerProfileAnalyzer(tft_beam_experimental.PTransformAnalyzer):
    """Writes the per-owner mean of `label * features`; outputs the file path.

    Defined at module level because TFX pickles it into Beam workers.
    """

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        path = os.path.join(self.base_temp_dir, PROFILE_FILE)
        return (
            pcoll
            | "PartialSums" >> beam.FlatMap(_partial_sums)
            | "SumPerOwner" >> beam.CombinePerKey(_SumArrays())
            | "Format" >> beam.Map(_format_line)
            | "Write" >> beam.io.WriteToText(path, num_shards=1, shard_name_template="")
            # Emit the path only once the file is complete.
            | "WaitForWrite" >> beam.combiners.Count.Globally()
            | "Path" >> beam.Map(lambda _: path.encode("utf-8"))
        )


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


def owner_profile(
    owner_id: tf.Tensor, label: tf.Tensor, influencer_features: tf.Tensor
) -> Tuple[tf.Tensor, tf.Tensor]:
    """Looks up each row's owner profile ([B, F]) and train-row count ([B]).

    Must be called inside a `preprocessing_fn`. An owner without train rows
    (new, or only in eval) gets the global mean of `label * features` over all
    train rows as its profile and a count of 0, so callers can tell.
    """
    dim = influencer_features.shape[-1]
    if dim is None:
        raise ValueError("influencer_features needs a static width")
    zeros = ",".join(["0"] * (dim + 1))
    owner_id = tf.cast(tf.reshape(owner_id, [-1]), tf.int64)
    label = tf.cast(tf.reshape(label, [-1]), tf.float32)
    (path,) = tft.experimental.ptransform_analyzer(
        inputs=[owner_id, label, influencer_features],
        ptransform=OwnerProfileAnalyzer(),
        output_dtypes=[tf.string],
        output_shapes=[[]],
        # Placeholder asset contents while the graph is traced before analysis.
        output_asset_default_values=[f"-1\t{zeros}".encode("utf-8")],
        name="owner_profile",
    )
    global_mean = tft.mean(influencer_features * label[:, None], reduce_instance_dims=False, name="global_profile_mean")

    def construct_table(asset_path):
        initializer = tf.lookup.TextFileInitializer(
            asset_path,
            key_dtype=tf.int64,
            key_index=0,
            value_dtype=tf.string,
            value_index=1,
            delimiter="\t",
        )
        return tf.lookup.StaticHashTable(initializer, default_value="")

    packed, _ = tf_utils.construct_and_lookup_table(construct_table, path, owner_id)
    found = tf.not_equal(packed, "")
    packed = tf.where(found, packed, zeros)
    numbers = tf.strings.to_number(tf.strings.split(packed, ","), tf.float32)
    numbers = numbers.to_tensor(shape=[None, dim + 1])
    count = numbers[:, 0]
    profile = tf.where(found[:, None], numbers[:, 1:], tf.cast(global_mean, tf.float32)[None, :])
    return profile, count


def read_profiles(path: str) -> List[Tuple[int, int, np.ndarray]]:
    """Parses a profile asset (for tests and debugging)."""
    rows = []
    with tf.io.gfile.GFile(path) as handle:
        for line in handle:
            key, packed = line.rstrip("\n").split("\t")
            values = np.array([float(v) for v in packed.split(",")])
            rows.append((int(key), int(values[0]), values[1:]))
    return rows
