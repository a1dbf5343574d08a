"""TFX Trainer entry point: `run_fn` wires data, model, export and index.

The Trainer reads ExampleGen's raw examples (train; validation for early
stopping and the blend; eval only for the pushed version's owner tables; the
catalog split that feeds the index) and applies the Transform graph in the
input pipeline, so training and serving run the very same transformation.
Steps: schedule from the data size, towers with early stopping, the item
factors' lambda and blend, then two exports (measured: known rows; pushed:
every row) and the ScaNN index of the pushed one.
"""

import json
import os
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from models import features, hybrid, item_factors, owner_tables, progress, validation
from models.examples import read_split, sibling_split
from models.index import INDEX_REPORT, SCANN_SUBDIR, build_index, save_index
from models.model import SAMPLING_PROBABILITY_KEY, TwoTowerModel
from models.owner_tables import PROFILE_FILE
from models.retrieval_metrics import lookup
from models.config import ExportConfig, ModelConfig, from_custom_config
from models.serving import OwnerLookup, RecommenderModule, complete_raw_features

SHUFFLE_BUFFER = 1_000_000  # serialized rows (~200 bytes each)
TRAINING_REPORT = "training_report.json"  # assets.extra/: schedule, validation per epoch, the blend
# The model artifact holds two exports: Format-Serving (train-only owner tables), which the
# evaluators measure, and this one (tables from every row), which the Pusher publishes.
PUSHED_FORMAT = "Format-Pushed"
MEASURED_FORMAT = "Format-Serving"  # TFX's serving_model_dir


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
    """Transformed batches, cached (not yet shuffled across batches)."""
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
    return transformed_batches(raw, tft_layer, probability_table, shuffle_pairs)


def _pairs(files, data_accessor, tft_output) -> Tuple[np.ndarray, np.ndarray]:
    """(owner ids, influencer ids) of every row of a split, in one pass over the raw examples."""
    dataset = data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=8192, num_epochs=1), tft_output.raw_metadata.schema
    )
    owners, influencers = [np.zeros([0], np.int64)], [np.zeros([0], np.int64)]
    for raw in dataset:
        owners.append(raw[features.OWNER_ID].numpy().reshape(-1))
        influencers.append(raw[features.INFLUENCER_ID].numpy().reshape(-1))
    return np.concatenate(owners).astype(np.int64), np.concatenate(influencers).astype(np.int64)


def _sampling_probabilities(influencer_ids: np.ndarray, catalog_ids: np.ndarray) -> tf.lookup.StaticHashTable:
    """Each influencer's share of training rows: the logQ correction's Q."""
    ids, counts = np.unique(influencer_ids, return_counts=True)
    counts = dict(zip(ids.tolist(), counts.tolist()))
    total = float(max(1, len(influencer_ids)))
    floor = 1.0 / total  # never-hired influencers: as if hired once
    probabilities = np.array([counts.get(int(i), 1) / total for i in catalog_ids], np.float32)
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(catalog_ids, tf.int64), tf.constant(probabilities)), default_value=floor
    )


def _validation_set(rows: tf.data.Dataset, catalog_ids: np.ndarray) -> validation.ValidationSet:
    """Up to MAX_VALIDATION_ROWS rows of the (shuffled) validation split, transformed as served."""
    batches, count = [], 0
    for batch in rows:
        if count >= validation.MAX_VALIDATION_ROWS:
            break
        batches.append(batch)
        count += int(tf.shape(batch[features.INFLUENCER_ID_KEY])[0])
    return validation.ValidationSet(batches, lambda ids: lookup(ids, catalog_ids))


def _item_spectrum(owner_ids: np.ndarray, influencer_ids: np.ndarray, catalog_ids: np.ndarray, seed: int) -> item_factors.Spectrum:
    owners = np.unique(owner_ids, return_inverse=True)[1]
    items = lookup(influencer_ids, catalog_ids)
    known = items >= 0
    matrix = item_factors.interactions(owners[known], items[known], int(owners.max()) + 1 if len(owners) else 1, len(catalog_ids))
    return item_factors.top_spectrum(matrix, item_factors.factor_rank(len(catalog_ids), matrix.shape[0]), seed=seed)


def _mean_label(dataset: tf.data.Dataset) -> float:
    total, n = 0.0, 0
    for batch in dataset.take(50):
        label = batch[features.LABEL_KEY].numpy()
        total, n = total + float(label.sum()), n + label.size
    return total / max(n, 1)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Trains the towers (early stopping on validation rows), blends in the item factors, exports model and index."""
    custom = fn_args.custom_config or {}
    config = from_custom_config(ModelConfig, custom.get("model"))
    export_config = from_custom_config(ExportConfig, custom.get("export"))
    default_k, max_k = export_config.default_k, export_config.max_k
    tf.keras.utils.set_random_seed(config.seed)

    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    catalog_spec = {name: raw_spec[name] for name in features.INFLUENCER_RAW_FEATURES}
    catalog = read_split(sibling_split(fn_args.train_files, features.CATALOG_SPLIT), catalog_spec)
    catalog_ids = np.asarray(catalog[features.INFLUENCER_ID], np.int64)

    owner_ids, influencer_ids = _pairs(fn_args.train_files, fn_args.data_accessor, tft_output)
    validation_files = sibling_split(fn_args.train_files, features.VALIDATION_SPLIT)
    if config.shuffle_pairs:  # the sanity check's model without signal: no true pair reaches the item factors either
        influencer_ids = np.random.default_rng(config.seed).permutation(influencer_ids)
    batch_size, max_epochs = validation.schedule(len(owner_ids), config.batch_size, config.epochs)

    probabilities = _sampling_probabilities(influencer_ids, catalog_ids)
    make = lambda files, training, size: _dataset(
        files, fn_args.data_accessor, tft_output, tft_layer, size, probabilities, training, config.seed,
        shuffle_pairs=training and config.shuffle_pairs,
    )
    train = make(fn_args.train_files, True, batch_size).shuffle(10_000, seed=config.seed, reshuffle_each_iteration=True).prefetch(tf.data.AUTOTUNE)
    validation_rows = _validation_set(make(validation_files, True, 1024), catalog_ids)
    progress.report(
        "Trainer: %s influencers, %s train rows (batches of %d, at most %d epochs), %s validation rows",
        f"{len(catalog_ids):,}", f"{len(owner_ids):,}", batch_size, max_epochs, f"{validation_rows.size:,}",
    )

    model = TwoTowerModel(config, _owner_ids(tft_output), catalog_ids)
    model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate))
    catalog_inputs = catalog_features(catalog, tft_layer, raw_spec)

    def tower_metrics():
        return validation.row_metrics(
            validation_rows.tower_queries(model.query_tower), model.candidate_tower(catalog_inputs).numpy(),
            validation_rows.targets, validation_rows.histories,
        )

    best = validation.BestEpoch(tower_metrics, config.patience, max_epochs)
    model.fit(
        train,
        epochs=max_epochs,
        callbacks=[best, tf.keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=2,
    )
    best.restore_best()

    # Item factors: lambda and blend chosen on the validation rows.
    tower_candidates = model.candidate_tower(catalog_inputs).numpy()
    blend = hybrid.tune(
        _item_spectrum(owner_ids, influencer_ids, catalog_ids, config.seed),
        validation_rows.tower_queries(model.query_tower), tower_candidates, validation_rows,
    )
    progress.report("Trainer: blend of towers %.2f and item factors %.2f (lambda %g), chosen on the validation rows", blend.tower_share, 1 - blend.tower_share, blend.lam)
    shuffled = lambda rows: (rows[0], np.random.default_rng(config.seed).permutation(rows[1])) if config.shuffle_pairs else rows
    mean_label = _mean_label(train)
    export = lambda rows, owners: _hybrid_module(
        model, tft_layer, raw_spec, catalog, tower_candidates, blend, shuffled(rows), mean_label, default_k, max_k, config.seed, owners
    )

    # Two exports with the same towers and blend; owner tables and item factors from the rows each may know.
    # Measured (the gate, the benchmark): the known rows (train and validation), never eval.
    # Pushed: every row the pipeline was given.
    fallback = tft_layer(complete_raw_features({}, raw_spec, tf.constant(1)))[features.OWNER_PROFILE_KEY].numpy()[0]
    rows_of = lambda file_lists: _served_rows(file_lists, fn_args.data_accessor, tft_output, tft_layer, probabilities)
    known = rows_of([fn_args.train_files, validation_files])
    every = tuple(np.concatenate(parts) for parts in zip(known, rows_of([fn_args.eval_files])))
    measured = export(known[:2], OwnerLookup(owner_tables.served_tables(*known), fallback))
    tf.saved_model.save(measured, fn_args.serving_model_dir, signatures=measured.signatures())
    tables = owner_tables.served_tables(*every)
    pushed = export(every[:2], OwnerLookup(tables, fallback))
    pushed_dir = pushed_model_dir(fn_args.serving_model_dir)
    tf.saved_model.save(pushed, pushed_dir, signatures=pushed.signatures())
    extra = os.path.join(pushed_dir, "assets.extra")
    tf.io.gfile.makedirs(extra)
    owner_tables.write_served_history(os.path.join(extra, owner_tables.SERVED_HISTORY_FILE), tables)
    _export_index(pushed, tables, export_config, pushed_dir)
    training = {
        "train_rows": int(len(owner_ids)), "validation_rows": int(len(known[0]) - len(owner_ids)), "validation_rows_scored": validation_rows.size,
        "served_rows": int(len(every[0])), "served_owners": int(len(tables["owner_ids"])),
        "batch_size": batch_size, "max_epochs": max_epochs, "best_epoch": best.best_epoch, "epochs": best.history,
        "blend": {"tower_share": blend.tower_share, "lambda": blend.lam, "tried": blend.tried},
    }
    for directory in (fn_args.serving_model_dir, pushed_dir):
        tf.io.gfile.makedirs(os.path.join(directory, "assets.extra"))
        with tf.io.gfile.GFile(os.path.join(directory, "assets.extra", TRAINING_REPORT), "w") as handle:
            handle.write(json.dumps(training, indent=2))


def pushed_model_dir(serving_model_dir: str) -> str:
    """Where the Trainer writes the version the Pusher publishes (beside the measured Format-Serving)."""
    return os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), PUSHED_FORMAT)


def _hybrid_module(model, tft_layer, raw_spec, catalog, tower_candidates, blend, rows, mean_label, default_k, max_k, seed, owners):
    """The serving module over `rows` (owner ids, influencer ids): item factors refit on them at the chosen lambda."""
    catalog_ids = np.asarray(catalog[features.INFLUENCER_ID], np.int64)
    owner_ids, influencer_ids = rows
    towers_only = blend.item_weight == 0.0  # the item factors add nothing here: serve the towers alone
    factors = None if towers_only else item_factors.factors(_item_spectrum(owner_ids, influencer_ids, catalog_ids, seed), blend.lam)
    return RecommenderModule(
        model, tft_layer, raw_spec, catalog,
        tower_candidates if towers_only else np.concatenate([tower_candidates, factors.candidate], axis=1),
        mean_label, default_k, max_k, owners,
        tower_weight=blend.tower_weight, item_query=None if towers_only else blend.item_weight * factors.query,
    )


def _served_rows(file_lists, data_accessor, tft_output, tft_layer, probabilities) -> Tuple[np.ndarray, ...]:
    """(owner ids, influencer ids, influencer features, labels) of every row of the given splits."""
    columns = {key: [] for key in (features.OWNER_ID_KEY, features.INFLUENCER_ID_KEY, features.INFLUENCER_FEATURES_KEY, features.LABEL_KEY)}
    for files in file_lists:
        for batch in _dataset(files, data_accessor, tft_output, tft_layer, 8192, probabilities, False, 0):
            for key in columns:
                columns[key].append(batch[key].numpy())
    owner_ids, influencer_ids, items, labels = (np.concatenate(columns[key]) for key in columns)
    return owner_ids.reshape(-1).astype(np.int64), influencer_ids.reshape(-1).astype(np.int64), items, labels.reshape(-1)


def _export_index(module: RecommenderModule, tables: Dict[str, np.ndarray], config: ExportConfig, directory: str) -> None:
    """The ScaNN index, tuned on real owners' query embeddings against brute force, and its report.

    It fetches enough candidates that 95% of owners still have k after their past hires are
    dropped (the rest are answered exactly), and at least the configured fetch.
    """
    owners = tf.constant(np.random.default_rng(0).permutation(tables["owner_ids"])[:5000], tf.int64)
    hires = np.diff(tables["hire_splits"])
    fetch = max(config.scann_fetch, config.default_k + int(np.percentile(hires, 95)) if len(hires) else 0)
    queries = module.query_embedding(owners)["embedding"].numpy()
    # Tuned on what `recommend` serves: the ranking with each owner's past hires left out.
    history = tf.RaggedTensor.from_sparse(module.owner_inputs(owners)[features.OWNER_HISTORY_KEY])
    index, report = build_index(
        module.catalog_embeddings.numpy(),
        module.catalog_ids.numpy(),
        queries,
        k=config.default_k,
        target_recall=config.scann_target_recall,
        fetch=fetch,
        exclude_ids=[row.numpy() for row in history],
    )
    progress.report("Trainer: ScaNN index recall@%d %.3f against brute force (%s)", report["k"], report["recall_at_k"], report["settings"])
    save_index(module, index, os.path.join(directory, SCANN_SUBDIR))
    with tf.io.gfile.GFile(os.path.join(directory, "assets.extra", INDEX_REPORT), "w") as handle:
        handle.write(json.dumps(report, indent=2))
