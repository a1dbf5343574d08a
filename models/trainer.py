"""TFX Trainer entry point: `run_fn` wires data, model, export and index.

The Trainer reads ExampleGen's raw examples: the rows of train (what the
towers and the item factors learn from), validation (the choice of penalty,
early stopping and the blend) and eval (only for the pushed version's owner
tables), three numbers a row, and the catalog split, whose features go
through the Transform graph, so training and serving see the same features.
Steps, each timed in the training report: read, item factors (the closed
form's penalty chosen on the validation rows), towers (owner batches, early
stopping), blend, then two exports (measured: known rows; pushed: every row)
and the ScaNN index of the pushed one.
"""

import json
import os
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx

from models import features, hybrid, item_factors, owner_tables, progress, tower_batches, validation
from models.config import ExportConfig, ModelConfig, as_custom_config, from_custom_config
from models.examples import read_split, sibling_split, sorted_by
from models.index import export_index
from models.memory import release_memory, trim_heap
from models.layout import INDEX_REPORT, MEASURED_FORMAT, PUSHED_FORMAT, SCANN_SUBDIR, TRAINING_REPORT  # noqa: F401  (re-exported)
from models.model import MAX_SOFTMAX_ITEMS, TwoTowerModel, optimizer
from models.owner_rows import OwnerRows, Rows, read_rows
from models.serving import OwnerLookup, RecommenderModule, complete_raw_features


# Catalog rows per pass through the transform graph: its intermediate tensors (the owner lookups' string
# splits, filled for every row) took 5.8 GB at a million influencers in one pass.
CATALOG_CHUNK = 1 << 16


def catalog_features(catalog: Dict[str, np.ndarray], tft_layer, raw_spec) -> Dict[str, tf.Tensor]:
    """Transform outputs of catalog rows (their owner inputs filled as "no owner")."""
    raw = {name: tf.constant(np.asarray(catalog[name]).reshape(-1, 1), raw_spec[name].dtype)
           for name in features.INFLUENCER_RAW_FEATURES if name != features.CATEGORIES}
    raw[features.CATEGORIES] = tf.ragged.constant([list(c) for c in catalog[features.CATEGORIES]], tf.string).to_sparse()
    return tft_layer(complete_raw_features(raw, raw_spec, tf.constant(len(catalog[features.INFLUENCER_ID]))))


def catalog_feature_matrix(catalog: Dict[str, np.ndarray], tft_layer, raw_spec, chunk: int = CATALOG_CHUNK) -> np.ndarray:
    """[catalog, F]: each catalog row's transformed influencer features, `chunk` rows at a time."""
    n = len(catalog[features.INFLUENCER_ID])
    return np.concatenate([
        catalog_features({name: values[start : start + chunk] for name, values in catalog.items()}, tft_layer, raw_spec)[
            features.INFLUENCER_FEATURES_KEY].numpy()
        for start in range(0, max(n, 1), chunk)
    ])


def _label_fn(tft_layer, raw_spec):
    """Transform's combined rating of raw rows, from their star and sentiment alone (the rest filled as empty)."""
    def label(raw: Dict[str, tf.Tensor]) -> tf.Tensor:
        partial = {name: raw[name] for name in (features.STAR_RATING, features.SENTIMENT)}
        return tft_layer(complete_raw_features(partial, raw_spec, tf.shape(raw[features.STAR_RATING])[0]))[features.LABEL_KEY]

    return label


def _shuffled(rows: Rows, seed: int) -> Rows:
    """The sanity check's rows: each owner paired with another row's influencer, a model without signal."""
    return Rows(rows.owner_ids, np.random.default_rng(seed).permutation(rows.influencer_ids), rows.labels)


def _item_factors(owners: OwnerRows, rows: validation.ValidationSet, seed: int) -> item_factors.Tuned:
    """The penalty and rank on the validation rows, scored per owner."""
    def score(factors: item_factors.ItemFactors) -> float:
        return rows.owner_metrics(item_factors.history_queries(factors, rows.owner_histories), factors.candidate)[validation.METRIC]

    rank = item_factors.factor_rank(owners.hires.shape[1], len(owners))
    return item_factors.tune(owners.hires, score, rank, seed=seed, log=lambda message: progress.report("Trainer: item factors: %s", message))


def _train_towers(config: ModelConfig, owners: OwnerRows, catalog_feature_matrix: np.ndarray, rows: validation.ValidationSet, log_dir: str,
                  blends: hybrid.BlendSearch):
    """The two-tower model on owner batches, early-stopped on the served blend's validation metric (best weights kept).

    Each epoch is scored as it would be served, blended with the item factors at the best share of a
    coarse grid: towers that add nothing to the item factors stop after `patience` epochs, and the
    epoch kept is the one that complements them best, not the best on its own.
    """
    hires = np.diff(owners.hires.indptr)
    eligible = hires >= 2  # an owner needs an input and a target
    n_pairs = float(config.target_share * hires[eligible].sum())
    width = min(len(owners.catalog_ids), MAX_SOFTMAX_ITEMS)
    batch_owners, max_epochs, epoch_share = validation.schedule(int(eligible.sum()), n_pairs, width, config.batch_size, config.epochs)
    steps = max(1, int(np.ceil(epoch_share * tower_batches.batches_per_pass(owners, batch_owners))))
    progress.report(
        "Trainer: towers on %s owners (%s target pairs a pass, softmax over %s influencers, batches of %d owners, at most %d epochs of %d steps, %.0f%% of a pass each), %s validation rows",
        f"{int(eligible.sum()):,}", f"{int(n_pairs):,}", f"{width:,}", batch_owners, max_epochs, steps, 100 * epoch_share, f"{rows.size:,}",
    )
    model = TwoTowerModel(config, owners.owner_ids, owners.catalog_ids, catalog_feature_matrix)
    model.compile(optimizer=optimizer(config, model, len(owners.catalog_ids)))

    def tower_metrics():
        blend = blends.tune(rows.tower_queries(model.query_tower), model.catalog_embeddings().numpy(), hybrid.EPOCH_BLEND_WEIGHTS)
        return {**blend.metrics(blend.tower_share), "towers_alone": blend.metrics(1.0)[validation.METRIC]}

    best = validation.BestEpoch(tower_metrics, config.patience, max_epochs)
    model.fit(
        tower_batches.dataset(owners, catalog_feature_matrix, config.target_share, batch_owners, config.seed, config.cold_start_share),
        steps_per_epoch=steps,
        epochs=max_epochs,
        callbacks=[best, tf.keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch")],
        verbose=2,
    )
    best.restore_best()
    return model, best, {"batch_owners": batch_owners, "max_epochs": max_epochs, "steps_per_epoch": steps, "epoch_share_of_a_pass": round(epoch_share, 4),
                         "target_pairs_per_epoch": int(n_pairs * epoch_share), "softmax_width": width}


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """Item factors and towers chosen on the validation rows, blended, exported with the ScaNN index."""
    try:
        _train_and_export(fn_args)
    finally:  # the later components run in this process: they should not carry the Trainer's gigabytes
        release_memory()


def _train_and_export(fn_args: tfx.components.FnArgs) -> None:
    custom = fn_args.custom_config or {}
    config = from_custom_config(ModelConfig, custom.get("model"))
    export_config = from_custom_config(ExportConfig, custom.get("export"))
    tf.keras.utils.set_random_seed(config.seed)
    steps = progress.Steps()

    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    catalog = sorted_by(read_split(sibling_split(fn_args.train_files, features.CATALOG_SPLIT),
                                   {name: raw_spec[name] for name in features.INFLUENCER_RAW_FEATURES}), features.INFLUENCER_ID)
    catalog_ids = np.asarray(catalog[features.INFLUENCER_ID], np.int64)
    feature_matrix = catalog_feature_matrix(catalog, tft_layer, raw_spec)
    read = lambda files: read_rows(files, fn_args.data_accessor, tft_output.raw_metadata.schema, _label_fn(tft_layer, raw_spec))
    train, held, evaluation = steps.run("read", lambda: [read(f) for f in (
        fn_args.train_files, sibling_split(fn_args.train_files, features.VALIDATION_SPLIT), fn_args.eval_files)])
    if config.shuffle_pairs:  # the sanity check's model without signal: no true pair reaches the item factors either
        train, held, evaluation = (_shuffled(rows, config.seed + n) for n, rows in enumerate((train, held, evaluation)))
    owners = OwnerRows(train, catalog_ids)
    rows = validation.ValidationSet(owners, held, feature_matrix, seed=config.seed)
    progress.report("Trainer: %s influencers, %s train rows of %s owners, %s validation rows", f"{len(catalog_ids):,}",
                    f"{len(train):,}", f"{len(owners):,}", f"{rows.size:,}")

    tuned = steps.run("item factors", lambda: _item_factors(owners, rows, config.seed))
    blends = hybrid.BlendSearch(tuned.factors, rows)
    model, best, schedule = steps.run("towers", lambda: _train_towers(config, owners, feature_matrix, rows, fn_args.model_run_dir, blends))
    tower_candidates = model.catalog_embeddings().numpy()
    tower_queries = rows.tower_queries(model.query_tower)
    blend = steps.run("blend", lambda: blends.tune(tower_queries, tower_candidates))
    calibration = _rating_calibration(model, tower_queries, tower_candidates, rows)
    alone, blended = blend.metrics(0.0)[validation.METRIC], blend.metrics(blend.tower_share)[validation.METRIC]
    progress.report(
        "Trainer: served score = towers %.2f + item factors %.2f (%s), chosen on the validation rows: %s %.4f, item factors alone %.4f (%+.1f%%)",
        blend.tower_share, 1 - blend.tower_share, tuned.factors.penalty.name, validation.METRIC, blended, alone,
        100 * (blended / alone - 1) if alone else 0.0,
    )

    # Two exports with the same towers, penalty and blend; owner tables and item factors from the rows each may know.
    # Measured (the gate, the benchmark): the known rows (train and validation), never eval. Pushed: every row.
    fallback = tft_layer(complete_raw_features({}, raw_spec, tf.constant(1)))[features.OWNER_PROFILE_KEY].numpy()[0]
    export = lambda known: _hybrid_module(
        model, tft_layer, raw_spec, catalog, feature_matrix, tower_candidates, blend, tuned, known,
        float(np.mean(train.labels)) if len(train) else 0.0, export_config, config.seed, fallback, calibration,
    )
    measured, _ = steps.run("exports", lambda: export(OwnerRows(train + held, catalog_ids)))
    steps.run("exports", lambda: tf.saved_model.save(measured, fn_args.serving_model_dir, signatures=measured.signatures()))
    del measured  # saved: its tables and traced graphs need not sit beside the pushed version's
    trim_heap()
    pushed, tables = steps.run("exports", lambda: export(OwnerRows(train + held + evaluation, catalog_ids)))
    pushed_dir = pushed_model_dir(fn_args.serving_model_dir)
    steps.run("exports", lambda: tf.saved_model.save(pushed, pushed_dir, signatures=pushed.signatures()))
    extra = os.path.join(pushed_dir, "assets.extra")
    tf.io.gfile.makedirs(extra)
    owner_tables.write_served_history(os.path.join(extra, owner_tables.SERVED_HISTORY_FILE), tables)
    steps.run("index", lambda: export_index(pushed, tables, export_config, pushed_dir))
    training = {
        "train_rows": len(train), "validation_rows": len(held), "validation_rows_scored": rows.size,
        "validation_owners_scored": len(rows.owner_histories),
        "served_rows": len(train) + len(held) + len(evaluation), "served_owners": int(len(tables["owner_ids"])),
        **schedule, "best_epoch": best.best_epoch, "epochs": best.history,
        "item_factors": {"penalty": tuned.factors.penalty.name, "lambda": tuned.factors.penalty.lam, "dropout": tuned.factors.penalty.dropout,
                         "zero_diagonal": tuned.factors.penalty.zero_diagonal, "rank": tuned.rank, "tried": tuned.tried},
        "blend": {"tower_share": blend.tower_share, "validation": blend.metrics(blend.tower_share), "item_factors_alone": blend.metrics(0.0),
                  "towers_alone": blend.metrics(1.0), "tried": blend.tried},
        "rating_calibration": {"offset": calibration[0], "scale": calibration[1]},
        "export": as_custom_config(export_config),  # what refresh-catalog rebuilds a version with
        "step_seconds": steps.rounded(),
    }
    for directory in (fn_args.serving_model_dir, pushed_dir):
        tf.io.gfile.makedirs(os.path.join(directory, "assets.extra"))
        with tf.io.gfile.GFile(os.path.join(directory, "assets.extra", TRAINING_REPORT), "w") as handle:
            handle.write(json.dumps(training, indent=2))


def _rating_calibration(model, tower_queries: np.ndarray, tower_candidates: np.ndarray, rows: validation.ValidationSet) -> Tuple[float, float]:
    """The rating head's line to the validation rows' labels (served by serving_default); `tower_queries` per owner."""
    if not rows.size:
        return 0.0, 1.0
    predictions = model.rating_head(tf.constant(tower_queries[rows.row_owner]), tf.constant(tower_candidates[rows.targets])).numpy()
    return validation.rating_calibration(predictions, rows.labels)


def pushed_model_dir(serving_model_dir: str) -> str:
    """Where the Trainer writes the version the Pusher publishes (beside the measured Format-Serving)."""
    return os.path.join(os.path.dirname(serving_model_dir.rstrip("/")), PUSHED_FORMAT)


def _hybrid_module(model, tft_layer, raw_spec, catalog, feature_matrix, tower_candidates, blend, tuned: item_factors.Tuned, owners: OwnerRows,
                   mean_label, export_config: ExportConfig, seed, fallback, rating_calibration: Tuple[float, float]):
    """The serving module over `owners`' rows: their owner tables, and the item factors refit on them at the chosen penalty and rank
    (from the chosen spectrum's eigenvectors: the rows differ by the validation or eval split only)."""
    tables = owner_tables.served_tables(owners, feature_matrix)
    towers_only = blend.item_weight == 0.0  # the item factors add nothing here: serve the towers alone
    factors = None
    if not towers_only:
        penalty = tuned.factors.penalty
        factors = item_factors.factors(item_factors.spectrum_for(owners.hires, penalty, tuned.rank, seed, start=tuned.spectrum.vectors), penalty)
    module = RecommenderModule(
        model, tft_layer, raw_spec, catalog,
        tower_candidates if towers_only else np.concatenate([tower_candidates, factors.candidate], axis=1),
        mean_label, export_config.default_k, export_config.max_k, OwnerLookup(tables, fallback),
        tower_weight=blend.tower_weight, item_query=None if towers_only else blend.item_weight * factors.query,
        rating_calibration=rating_calibration,
    )
    return module, tables
