"""TFX Trainer entry point: `run_fn` wires data, model, export and index.

The Trainer reads ExampleGen's raw examples (train, eval, and the catalog
split that feeds the index) and applies the Transform graph in the input
pipeline, so training and serving run the very same transformation.
"""

import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # TFRS needs Keras 2.

from typing import Dict, List

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import features
from models.index import INDEX_REPORT, SCANN_SUBDIR, build_index, save_index
from models.model import SAMPLING_PROBABILITY_KEY, TwoTowerModel
from models.owner_tables import PROFILE_FILE
from models.serving import RecommenderModule, complete_raw_features
from pipeline.config import ModelConfig, PipelineConfig

SHUFFLE_BUFFER = 1_000_000  # serialized rows (~200 bytes each)


def split_pattern(train_files: List[str], split: str) -> str:
    """Files of another split of the same Examples artifact (`<uri>/Split-<name>/`)."""
    return os.path.join(os.path.dirname(os.path.dirname(train_files[0].rstrip("*"))), f"Split-{split}", "*")


def read_split(pattern: str, spec: Dict) -> Dict[str, np.ndarray]:
    """A whole split as numpy arrays (catalog-sized data only)."""
    files = tf.io.gfile.glob(pattern)
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(8192)
    columns: Dict[str, list] = {name: [] for name in spec}
    for batch in dataset:
        parsed = tf.io.parse_example(batch, spec)
        for name, value in parsed.items():
            if isinstance(value, tf.SparseTensor):
                columns[name].extend(
                    tuple(v.decode() for v in row) for row in tf.RaggedTensor.from_sparse(value).to_list()
                )
            else:
                columns[name].append(value.numpy().reshape(-1))
    return {name: (np.concatenate(v) if v and isinstance(v[0], np.ndarray) else v) for name, v in columns.items()}


def catalog_features(catalog: Dict[str, np.ndarray], tft_layer, raw_spec) -> Dict[str, tf.Tensor]:
    """Transform outputs of catalog rows (their owner inputs filled as "no owner")."""
    raw = {name: tf.constant(np.asarray(catalog[name]).reshape(-1, 1), raw_spec[name].dtype)
           for name in features.INFLUENCER_RAW_FEATURES if name != features.CATEGORIES}
    raw[features.CATEGORIES] = tf.ragged.constant([list(c) for c in catalog[features.CATEGORIES]], tf.string).to_sparse()
    return tft_layer(complete_raw_features(raw, raw_spec, tf.constant(len(catalog[features.INFLUENCER_ID]))))


def _owner_ids(tft_output: tft.TFTransformOutput) -> np.ndarray:
    path = os.path.join(tft_output.transform_savedmodel_dir, "assets", PROFILE_FILE)
    with tf.io.gfile.GFile(path) as handle:
        return np.array(sorted(int(line.split("\t", 1)[0]) for line in handle), np.int64)


CANDIDATE_KEYS = (features.INFLUENCER_ID_KEY, features.INFLUENCER_FEATURES_KEY, SAMPLING_PROBABILITY_KEY)


def _shuffle_pairs(batch: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Pairs every query with another row's influencer: a model without signal."""
    order = tf.random.shuffle(tf.range(tf.shape(batch[features.INFLUENCER_ID_KEY])[0]))
    return {k: tf.gather(v, order) if k in CANDIDATE_KEYS else v for k, v in batch.items()}


def transformed_batches(raw: tf.data.Dataset, tft_layer, probability_table, shuffle_pairs: bool = False) -> tf.data.Dataset:
    """Raw batches -> Transform outputs plus each row's sampling probability, cached.

    The transform (owner-table lookups, string parsing) runs once; later
    epochs replay the cached batches in a new order.
    """

    def transform(batch):
        transformed = tft_layer(batch)
        ids = tf.reshape(transformed[features.INFLUENCER_ID_KEY], [-1])
        transformed[SAMPLING_PROBABILITY_KEY] = probability_table.lookup(ids)
        return _shuffle_pairs(transformed) if shuffle_pairs else transformed

    return raw.map(transform, num_parallel_calls=tf.data.AUTOTUNE).cache()


def _dataset(files, data_accessor, tft_output, tft_layer, batch_size, probability_table, shuffle, seed, shuffle_pairs=False) -> tf.data.Dataset:
    # ExampleGen's join writes rows grouped by influencer; a small shuffle
    # buffer would leave batches full of one influencer, and in-batch
    # negatives would be its own duplicates.
    raw = data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, shuffle=shuffle, shuffle_seed=seed, shuffle_buffer_size=SHUFFLE_BUFFER, num_epochs=1
        ),
        tft_output.raw_metadata.schema,
    )
    dataset = transformed_batches(raw, tft_layer, probability_table, shuffle_pairs)
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _sampling_probabilities(files, data_accessor, tft_output, catalog_ids: np.ndarray) -> tf.lookup.StaticHashTable:
    """Each influencer's share of train rows: the logQ correction's Q."""
    dataset = data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=8192, num_epochs=1), tft_output.raw_metadata.schema
    )
    counts = {}
    for raw in dataset:
        ids, n = np.unique(raw[features.INFLUENCER_ID].numpy().reshape(-1), return_counts=True)
        for i, c in zip(ids.tolist(), n.tolist()):
            counts[i] = counts.get(i, 0) + c
    total = float(sum(counts.values()))
    floor = 1.0 / total  # never-hired influencers: as if hired once
    probabilities = np.array([counts.get(int(i), 1) / total for i in catalog_ids], np.float32)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(catalog_ids, tf.int64), tf.constant(probabilities)), default_value=floor
    )
    return table


def _mean_label(dataset: tf.data.Dataset) -> float:
    total, n = 0.0, 0
    for batch in dataset.take(50):
        label = batch[features.LABEL_KEY].numpy()
        total, n = total + float(label.sum()), n + label.size
    return total / max(n, 1)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the two-tower model, exports the stock-ops SavedModel and the ScaNN index."""
    custom = fn_args.custom_config or {}
    config = ModelConfig(**custom.get("model", {}))
    default_k = int(custom.get("default_k", PipelineConfig.default_k))
    max_k = int(custom.get("max_k", PipelineConfig.max_k))
    tf.keras.utils.set_random_seed(config.seed)

    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    catalog_spec = {name: raw_spec[name] for name in features.INFLUENCER_RAW_FEATURES}
    catalog = read_split(split_pattern(fn_args.train_files, features.CATALOG_SPLIT), catalog_spec)
    catalog_ids = np.asarray(catalog[features.INFLUENCER_ID], np.int64)
    logging.info("Catalog: %d influencers", len(catalog_ids))

    probabilities = _sampling_probabilities(fn_args.train_files, fn_args.data_accessor, tft_output, catalog_ids)
    make = lambda files, training: _dataset(
        files, fn_args.data_accessor, tft_output, tft_layer, config.batch_size, probabilities, training, config.seed,
        shuffle_pairs=training and config.shuffle_pairs,
    )
    train, evaluation = make(fn_args.train_files, True), make(fn_args.eval_files, False)

    model = TwoTowerModel(config, _owner_ids(tft_output), catalog_ids)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    model.fit(
        train,
        validation_data=evaluation,
        epochs=config.epochs,
        callbacks=[tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=2,
    )

    catalog_embeddings = model.candidate_tower(catalog_features(catalog, tft_layer, raw_spec)).numpy()
    module = RecommenderModule(model, tft_layer, raw_spec, catalog, catalog_embeddings, _mean_label(train), default_k, max_k)
    tf.saved_model.save(module, fn_args.serving_model_dir, signatures=module.signatures())

    # Index tuned on eval owners' real query embeddings, recorded next to it.
    eval_owners = np.unique(np.concatenate([b[features.OWNER_ID_KEY].numpy().reshape(-1) for b in evaluation.take(100)]))
    eval_owners = tf.constant(eval_owners[:5000], tf.int64)
    queries = module.query_embedding(eval_owners)["embedding"].numpy()
    # Tuned on what `recommend` serves: the ranking with each owner's past hires left out.
    hires = tf.RaggedTensor.from_sparse(module.owner_inputs(eval_owners)[features.OWNER_HISTORY_KEY])
    scann_cfg = custom.get("scann", {})
    index, report = build_index(
        catalog_embeddings,
        catalog_ids,
        queries,
        k=default_k,
        target_recall=float(scann_cfg.get("target_recall", 0.95)),
        fetch=int(scann_cfg.get("fetch", 200)),
        exclude_ids=[row.numpy() for row in hires],
    )
    logging.info("ScaNN index: recall@%d %.3f vs brute force with %s", report["k"], report["recall_at_k"], report["settings"])
    save_index(module, index, os.path.join(fn_args.serving_model_dir, SCANN_SUBDIR))
    tf.io.gfile.makedirs(os.path.join(fn_args.serving_model_dir, "assets.extra"))
    with tf.io.gfile.GFile(os.path.join(fn_args.serving_model_dir, "assets.extra", INDEX_REPORT), "w") as handle:
        handle.write(json.dumps(report, indent=2))
