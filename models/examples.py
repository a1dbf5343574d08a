"""Reading one split of an Examples artifact (`<uri>/Split-<name>/`, gzipped TFRecords), defined once."""

import os
from typing import Dict, List, Mapping, Sequence

import numpy as np
import tensorflow as tf


def split_files(examples_uri: str, split: str) -> List[str]:
    """The TFRecord files of one split of an Examples artifact."""
    return sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))


def sibling_split(split_files_: List[str], split: str) -> List[str]:
    """The files of another split of the same artifact, from the files (or glob) of one split, as FnArgs gives them."""
    return split_files(os.path.dirname(os.path.dirname(split_files_[0].rstrip("*"))), split)


def read_split(files: List[str], spec: Mapping[str, tf.io.FixedLenFeature], batch_size: int = 8192) -> Dict[str, np.ndarray]:
    """Whole split as numpy columns: FixedLen [1] as [N], wider ones as [N, W], VarLen strings as tuples of str.

    For catalog- and eval-sized data: the whole split is held in memory.
    """
    columns: Dict[str, list] = {name: [] for name in spec}
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        for name, value in tf.io.parse_example(batch, dict(spec)).items():
            if isinstance(value, tf.SparseTensor):
                columns[name].extend(tuple(v.decode() for v in row) for row in tf.RaggedTensor.from_sparse(value).to_list())
            else:
                array = value.numpy()
                columns[name].append(array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array)
    return {name: _column(values, spec[name]) for name, values in columns.items()}


def read_transformed(files: List[str], tft_output, keys: Sequence[str], batch_size: int = 8192) -> Dict[str, np.ndarray]:
    """Transform's dense outputs `keys` of a raw split's rows, through the graph the Trainer and serving apply.

    The pipeline's Transform writes no transformed copy of the rows (nothing reads one), so this is
    how a test or a benchmark sees them; the whole split is held in memory, as in read_split.
    """
    layer, raw_spec = tft_output.transform_features_layer(), tft_output.raw_feature_spec()
    columns: Dict[str, list] = {key: [] for key in keys}
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_size):
        outputs = layer(tf.io.parse_example(batch, raw_spec))
        for key in keys:
            columns[key].append(outputs[key].numpy())
    return {key: np.concatenate(values) if values else np.zeros(0, np.float32) for key, values in columns.items()}


def sorted_by(columns: Dict[str, np.ndarray], key: str) -> Dict[str, np.ndarray]:
    """`columns` (read_split's) in the order of column `key`, ties in read order.

    Beam writes a split's records in no fixed order; a model built on positions in that order (the
    randomized spectrum's start, ties in a ranking) would differ between runs on the same data.
    """
    order = np.argsort(np.asarray(columns[key]), kind="stable")
    return {name: [values[i] for i in order] if isinstance(values, list) else np.asarray(values)[order] for name, values in columns.items()}


def _column(values: list, feature) -> np.ndarray:
    if isinstance(feature, tf.io.VarLenFeature):
        return values
    if values:
        return np.concatenate(values)
    width = [d for d in feature.shape if d != 1]
    return np.zeros([0, *width], feature.dtype.as_numpy_dtype)
