"""`influencer-recs benchmark`: the quality protocol of docs/benchmark.md on one real dataset.

Runs the pipeline once per training seed (later seeds reuse the cached
ExampleGen and Transform), then scores on ITS split (ExampleGen's hash split:
eval 20%, the rest known): the pipeline's model (mean and spread over the
seeds) and its two parts alone (the ablation), most-popular, EASE and iALS
(each tuned on a validation slice of the known rows), a replica of the seed
notebook's model, and the cold-start path against popularity, category-aware
popularity and a category-mix oracle. The model is compared with EASE owner
by owner (a paired bootstrap). Writes a Markdown section and a PNG chart.
"""

import dataclasses
import datetime
import os
import platform
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from models import features
from benchmarks.report import bar_chart, replace_section
from pipeline.config import PipelineConfig
from models.trainer import MEASURED_FORMAT, TRAINING_REPORT
from runs.metadata import latest_artifact_uri, stage_timings

METRIC_KEYS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
PAIRED_KEYS = ("recall@10", "ndcg@10")
BOOTSTRAP_SAMPLES = 2000
DECLARED_CATEGORIES = 3  # what a new owner declares: its 3 most hired categories and its mean price
MODEL_ROW, ITEMS_ROW, TOWERS_ROW = "pipeline model (towers + item factors)", "ablation: item factors alone", "ablation: towers alone"


def heading(name: str) -> str:
    return f"## Recommendation quality on the {name} data"


def _timed(timings: Dict[str, float], name: str, fn: Callable):
    started = time.monotonic()
    result = fn()
    timings[name] = time.monotonic() - started
    return result


def run_benchmark(
    config: PipelineConfig, notebook_epochs: int, markdown_path: str, progress: Callable[[str], None] = print, seeds: Sequence[int] = (0, 1, 2),
    name: str = "anime",
) -> Dict:
    """Runs the pipeline once per training seed, then `score_pipeline_output` on every seed's model."""
    from pipeline import local_runner

    timings: Dict[str, float] = {}
    models = []
    for seed in seeds:
        run = dataclasses.replace(config, enable_cache=True, model=dataclasses.replace(config.model, seed=seed))
        progress(f"benchmark: running the pipeline on {config.data_dir} (training seed {seed})")
        _timed(timings, f"pipeline (all components), seed {seed}", lambda: local_runner.run(run))
        models.append(os.path.join(latest_artifact_uri(config, "Trainer", "model"), MEASURED_FORMAT))
    return score_pipeline_output(config, notebook_epochs, markdown_path, progress, timings, models, name)


def _mean_and_spread(runs: List[Dict[str, float]]) -> Tuple[Dict[str, float], Dict[str, float]]:
    mean = {k: float(np.mean([r[k] for r in runs])) for k in METRIC_KEYS}
    return {**mean, "owners": runs[0].get("owners", 0)}, {k: float(np.std([r[k] for r in runs])) for k in METRIC_KEYS}


def paired_difference(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray], seed: int = 0) -> Dict[str, Dict[str, float]]:
    """Mean per-owner difference a - b with a bootstrap 95% interval (owners resampled), for each paired key."""
    if not np.array_equal(a["owners"], b["owners"]):
        raise ValueError("paired metrics must cover the same owners")
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(a["owners"]), size=(BOOTSTRAP_SAMPLES, len(a["owners"])))
    out = {}
    for key in PAIRED_KEYS:
        diff = a[key] - b[key]
        means = diff[samples].mean(axis=1)
        out[key] = {"mean": float(diff.mean()), "low": float(np.percentile(means, 2.5)), "high": float(np.percentile(means, 97.5)),
                    "ratio": float(a[key].mean() / b[key].mean()) if b[key].mean() else float("nan")}
    return out


def _means(per_owner: Dict[str, np.ndarray]) -> Dict[str, float]:
    return {**{k: float(per_owner[k].mean()) for k in METRIC_KEYS}, "owners": int(len(per_owner["owners"]))}


def declared_preferences(owner_ids: np.ndarray, item_positions: np.ndarray, catalog) -> Dict[int, Tuple[List[str], float]]:
    """A stand-in for what a new owner would declare: its most hired categories and its mean price."""
    categories: Dict[int, Dict[str, int]] = {}
    prices: Dict[int, List[float]] = {}
    for owner, item in zip(owner_ids.tolist(), item_positions.tolist()):
        counts = categories.setdefault(owner, {})
        for c in catalog[features.CATEGORIES][item]:
            counts[c] = counts.get(c, 0) + 1
        prices.setdefault(owner, []).append(float(catalog[features.PRICE][item]))
    return {
        owner: (sorted(counts, key=lambda c: (-counts[c], c))[:DECLARED_CATEGORIES], float(np.mean(prices[owner])))
        for owner, counts in categories.items()
    }


def _category_matrix(catalog_categories: Sequence[Sequence[str]]):
    from scipy import sparse

    vocabulary = sorted({c for cats in catalog_categories for c in cats})
    index = {c: n for n, c in enumerate(vocabulary)}
    rows = [n for n, cats in enumerate(catalog_categories) for _ in cats]
    cols = [index[c] for cats in catalog_categories for c in cats]
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(catalog_categories), len(vocabulary))), index


def category_popularity_scores(popularity: np.ndarray, catalog_categories, declared: Dict[int, List[str]]):
    """Category-aware popularity: popularity times the number of declared categories an influencer has (popularity breaks ties)."""
    matrix, index = _category_matrix(catalog_categories)

    def scores(owner_ids: np.ndarray) -> np.ndarray:
        wanted = np.zeros((len(owner_ids), len(index)))
        for row, owner in enumerate(owner_ids.tolist()):
            for c in declared.get(owner, []):
                wanted[row, index[c]] = 1.0
        shared = np.asarray(matrix @ wanted.T).T
        return popularity[None, :] * (shared + 1e-3)

    return scores


def category_oracle_scores(popularity: np.ndarray, catalog_categories, heldout_mix: Dict[int, Dict[str, float]]):
    """The best categories-only ranking under a per-category popularity model: it knows each owner's true
    category mix (that of its held-out hires) and ranks by sum_c mix(c) * P(influencer | category c)."""
    from scipy import sparse

    matrix, index = _category_matrix(catalog_categories)
    per_category = sparse.csc_matrix(matrix.multiply(popularity[:, None]))
    per_category = per_category @ sparse.diags(1.0 / np.maximum(np.asarray(per_category.sum(axis=0)).ravel(), 1e-12))

    def scores(owner_ids: np.ndarray) -> np.ndarray:
        mix = np.zeros((len(owner_ids), len(index)))
        for row, owner in enumerate(owner_ids.tolist()):
            for c, share in heldout_mix.get(owner, {}).items():
                mix[row, index[c]] = share
        return np.asarray(per_category @ mix.T).T + 1e-9 * popularity[None, :]

    return scores


def catalog_embeddings(model, catalog_ids: np.ndarray) -> np.ndarray:
    """The model's catalog embeddings in the order of `catalog_ids`.

    Each Trainer run reads the catalog in its ExampleGen artifact's shard order, so two runs
    (a rerun ExampleGen, another seed) may hold the same influencers in different orders.
    """
    from models.retrieval_metrics import lookup

    own = model.catalog_ids.numpy()
    position = lookup(np.asarray(catalog_ids, np.int64), own)
    if len(own) != len(catalog_ids) or (position < 0).any():
        raise ValueError(f"the models to compare do not share one catalog ({len(own):,} vs {len(catalog_ids):,} influencers)")
    return model.catalog_embeddings.numpy()[position]


def score_pipeline_output(
    config: PipelineConfig, notebook_epochs: int, markdown_path: str, progress: Callable[[str], None] = print, timings=None,
    models: Optional[Sequence[str]] = None, name: str = "anime",
) -> Dict:
    """Scores a finished run's models (default: the newest) against the baselines on its split."""
    import json

    import tensorflow as tf
    import tensorflow_transform as tft

    from components.retrieval_evaluator import split_interactions
    from models.baselines import most_popular_scores, tune_ease, tune_ials
    from models.examples import read_split, read_transformed, split_files
    from models.notebook_replica import NotebookModel
    from models.retrieval_metrics import per_owner_rankings
    from models.trainer import catalog_feature_matrix

    timings = dict(timings or {})
    stages = stage_timings(config.metadata_path)
    examples_uri = latest_artifact_uri(config, "InteractionExampleGen", "examples")
    models = list(models or [os.path.join(latest_artifact_uri(config, "Trainer", "model"), MEASURED_FORMAT)])
    loaded = [tf.saved_model.load(path) for path in models]
    catalog_ids = loaded[0].catalog_ids.numpy()
    n_items = len(catalog_ids)
    train, heldout = split_interactions(examples_uri, catalog_ids)
    owner_vocab = train.owner_vocab
    evaluate = lambda scores_fn: per_owner_rankings(scores_fn, train.pairs, heldout.pairs, n_items)

    progress(f"benchmark: scoring the pipeline's model ({len(loaded)} seed(s)), its parts alone and most-popular")

    def model_scores(m, part: slice):
        query, embeddings = m.signatures["query_embedding"], catalog_embeddings(m, catalog_ids)[:, part]
        return lambda o: query(owner_id=tf.constant(owner_vocab[o], tf.int64))["embedding"].numpy()[:, part] @ embeddings.T

    parts = {MODEL_ROW: lambda m: slice(None), ITEMS_ROW: lambda m: slice(int(m.tower_width.numpy()), None),
             TOWERS_ROW: lambda m: slice(0, int(m.tower_width.numpy()))}
    per_seed_owner = {row: _timed(timings, f"score {row} (all seeds)", lambda part=part: [evaluate(model_scores(m, part(m))) for m in loaded])
                      for row, part in parts.items()}
    per_seed = {row: [_means(p) for p in values] for row, values in per_seed_owner.items()}
    spread = {row: _mean_and_spread(values)[1] for row, values in per_seed.items()}
    model_owner = {k: (np.mean([p[k] for p in per_seed_owner[MODEL_ROW]], axis=0) if k != "owners" else per_seed_owner[MODEL_ROW][0][k])
                   for k in per_seed_owner[MODEL_ROW][0]}
    results: Dict[str, Dict[str, float]] = {f"{row}, mean of {len(loaded)} seed(s)": _mean_and_spread(values)[0] for row, values in per_seed.items()}
    popular = evaluate(most_popular_scores(train.pairs, n_items))
    results["most-popular"] = _means(popular)

    progress("benchmark: tuning and scoring EASE and iALS")
    tuned = _timed(timings, "EASE (tune lambda + fit)", lambda: tune_ease(train.pairs, len(owner_vocab), n_items))
    ease_owner = _timed(timings, "score EASE", lambda: evaluate(tuned.model))
    results[f"EASE (lambda={tuned.lam:g})"] = _means(ease_owner)
    del tuned.model
    ials = _timed(timings, "iALS (tune + fit)", lambda: tune_ials(train.pairs, len(owner_vocab), n_items))
    results["iALS ({factors} factors, reg {regularization:g}, alpha {alpha:g})".format(**ials.params)] = _timed(
        timings, "score iALS", lambda: _means(evaluate(ials.model)))
    paired = {"model vs EASE": paired_difference(model_owner, ease_owner)}
    for row in (ITEMS_ROW, TOWERS_ROW):
        part_owner = {k: (np.mean([p[k] for p in per_seed_owner[row]], axis=0) if k != "owners" else per_seed_owner[row][0][k]) for k in model_owner}
        paired[f"model vs {row.split(': ')[1]}"] = paired_difference(model_owner, part_owner)

    progress(f"benchmark: training the notebook's model for {notebook_epochs} epochs")
    tft_output = tft.TFTransformOutput(latest_artifact_uri(config, "Transform", "transform_graph"))
    tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    keys = (features.OWNER_PROFILE_KEY, features.INFLUENCER_FEATURES_KEY, features.LABEL_KEY)
    columns = read_transformed(split_files(examples_uri, features.TRAIN_SPLIT), tft_output, keys)
    profiles, item_features, labels = (columns[k] for k in keys)
    replica = NotebookModel(item_features.shape[1], seed=config.model.seed)
    _timed(timings, f"notebook model ({notebook_epochs} epochs)", lambda: replica.fit(profiles, item_features, labels.reshape(-1), notebook_epochs))
    catalog = read_split(split_files(examples_uri, features.CATALOG_SPLIT), {n: raw_spec[n] for n in features.INFLUENCER_RAW_FEATURES})
    order = {int(i): n for n, i in enumerate(catalog[features.INFLUENCER_ID])}
    catalog = {key: [values[order[int(i)]] for i in catalog_ids] for key, values in catalog.items()}  # in the model's catalog order
    catalog_item_features = catalog_feature_matrix({k: np.asarray(v) if k != features.CATEGORIES else v for k, v in catalog.items()}, tft_layer, raw_spec)
    replica_items = replica.embed_influencers(catalog_item_features)

    def replica_scores(owners: np.ndarray) -> np.ndarray:
        ids = tf.constant(owner_vocab[owners].reshape(-1, 1), tf.int64)
        profile = tft_layer({**_fill(raw_spec, len(owners)), features.OWNER_ID: ids})[features.OWNER_PROFILE_KEY].numpy()
        return replica.embed_owners(profile) @ replica_items.T

    results[f"notebook model (MSE, {notebook_epochs} epochs)"] = _means(evaluate(replica_scores))

    progress("benchmark: cold start (history hidden, declared categories and budget only)")
    declared = declared_preferences(train.owners, train.items, catalog)
    popularity = np.bincount(train.items, minlength=n_items).astype(np.float64)
    heldout_mix: Dict[int, Dict[str, float]] = {}
    for owner, item in zip(heldout.owners.tolist(), heldout.items.tolist()):
        mix = heldout_mix.setdefault(owner, {})
        for c in catalog[features.CATEGORIES][item]:
            mix[c] = mix.get(c, 0.0) + 1.0
    heldout_mix = {o: {c: v / sum(m.values()) for c, v in m.items()} for o, m in heldout_mix.items()}

    def cold_scores(m):
        cold, embeddings = m.signatures["cold_start_embedding"], catalog_embeddings(m, catalog_ids)

        def scores(owners: np.ndarray) -> np.ndarray:
            prefs = [declared.get(int(o), ([], 0.5)) for o in owners]
            q = cold(categories=tf.constant([",".join(p[0]) for p in prefs]), budget=tf.constant([p[1] for p in prefs], tf.float32))
            return q["embedding"].numpy() @ embeddings.T

        return scores

    cold_per_seed = [_means(evaluate(cold_scores(m))) for m in loaded]
    cold_mean, cold_spread = _mean_and_spread(cold_per_seed)
    cold_start = {
        f"pipeline model, cold start, mean of {len(loaded)} seed(s)": cold_mean,
        "most-popular": results["most-popular"],
        f"category-aware popularity (declared top {DECLARED_CATEGORIES} categories)": _means(
            evaluate(category_popularity_scores(popularity, catalog[features.CATEGORIES], {o: declared.get(o, ([], 0))[0] for o in range(len(owner_vocab))}))),
        "category-mix oracle (knows each owner's held-out category mix; bound for categories-only queries)": _means(
            evaluate(category_oracle_scores(popularity, catalog[features.CATEGORIES], heldout_mix))),
    }
    training = []
    for path in models:
        with tf.io.gfile.GFile(os.path.join(path, "assets.extra", TRAINING_REPORT)) as handle:
            training.append(json.load(handle))

    report = {
        "name": name,
        "data": config.data_dir,
        "items": n_items,
        "owners": int(len(owner_vocab)),
        "train_rows": int(len(train.owners)),
        "eval_rows": int(len(heldout.owners)),
        "eval_owners": int(len(ease_owner["owners"])),
        "results": results,
        "paired": paired,
        "per_seed": per_seed,
        "spread": spread,
        "cold_start": cold_start,
        "cold_start_per_seed": cold_per_seed,
        "cold_start_spread": cold_spread,
        "training": [{"item_factors": t["item_factors"]["penalty"], "tower_share": t["blend"]["tower_share"], "best_epoch": t["best_epoch"],
                      "step_seconds": t.get("step_seconds", {})} for t in training],
        "models": models,
        "ease_validation": {str(k): v for k, v in tuned.validation.items()},
        "ials_validation": ials.validation,
        "stage_seconds": {**{f"pipeline: {k}": v for k, v in stages.items()}, **timings},
        "model_config": dataclasses.asdict(config.model),
    }
    if markdown_path:
        write_markdown(report, markdown_path)
    return report


def _fill(raw_spec, n: int):
    import tensorflow as tf

    from models.serving import complete_raw_features

    return complete_raw_features({}, raw_spec, tf.constant(n))


def _table(rows: Dict[str, Dict[str, float]]) -> List[str]:
    lines = ["| model | " + " | ".join(METRIC_KEYS) + " |", "| --- |" + " ---: |" * len(METRIC_KEYS)]
    for row, metrics in rows.items():
        lines.append(f"| {row} | " + " | ".join(f"{metrics[k]:.4f}" for k in METRIC_KEYS) + " |")
    return lines


def _paired_lines(paired: Dict[str, Dict[str, Dict[str, float]]]) -> List[str]:
    lines = ["| comparison | metric | ratio of means | mean per-owner difference | 95% interval |", "| --- | --- | ---: | ---: | --- |"]
    for comparison, by_key in paired.items():
        for key, v in by_key.items():
            lines.append(f"| {comparison} | {key} | {v['ratio']:.3f}x | {v['mean']:+.4f} | [{v['low']:+.4f}, {v['high']:+.4f}] |")
    return lines


def write_markdown(report: Dict, path: str) -> None:
    """Replaces this dataset's quality section of a Markdown file such as BENCHMARKS.md (other sections kept), with its chart."""
    chart = os.path.splitext(path)[0] + f"_quality_{report['name']}.png"
    bar_chart(report["results"], ("recall@10", "ndcg@10"), f"{report['name']}: recall@10 (blue) and NDCG@10 (orange), same split", chart)
    per_seed_rows = {f"{row}, seed {n}": r for row, runs in report["per_seed"].items() for n, r in enumerate(runs)}
    section = [
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, {platform.processor() or platform.machine()}), data `{report['data']}`: "
        f"{report['items']:,} influencers, {report['owners']:,} owners, {report['train_rows']:,} known (train + validation) / "
        f"{report['eval_rows']:,} eval history rows of {report['eval_owners']:,} owners (ExampleGen's hash split). "
        "Protocol: [docs/benchmark.md](docs/benchmark.md) (whole catalog ranked, the owner's known influencers excluded, mean over "
        "owners with eval rows). Reproduce: `make bench`.",
        "",
        *_table(report["results"]),
        "",
        f"Paired against EASE and against the model's own parts, owner by owner ({BOOTSTRAP_SAMPLES:,} bootstrap resamples of the "
        "eval owners; the model's per-owner metric is the mean over the seeds):",
        "",
        *_paired_lines(report["paired"]),
        "",
        "Per training seed (standard deviation over seeds of the model's recall@10 "
        f"{report['spread'][MODEL_ROW]['recall@10']:.4f}, ndcg@10 {report['spread'][MODEL_ROW]['ndcg@10']:.4f}); what the Trainer chose "
        "on its validation rows, per seed: " + "; ".join(
            f"seed {n}: {t['item_factors']}, towers' share {t['tower_share']:.2f}, best epoch {t['best_epoch']}" for n, t in enumerate(report["training"])),
        "",
        *_table(per_seed_rows),
        "",
        f"![quality chart]({os.path.basename(chart)})",
        "",
        f"Cold start (each eval owner's history hidden; the query is built from its {DECLARED_CATEGORIES} most hired categories and its "
        "mean price, as a new owner would declare them):",
        "",
        *_table(report["cold_start"]),
        "",
        "Trainer steps (seconds, per seed): " + "; ".join(
            ", ".join(f"{k} {v:.0f}" for k, v in t["step_seconds"].items()) for t in report["training"]),
        "",
        "Wall time of each stage (seconds):",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
        *[f"| {stage} | {seconds:.0f} |" for stage, seconds in report["stage_seconds"].items()],
        "",
        f"Model config: `{report['model_config']}`",
        "",
    ]
    replace_section(path, heading(report["name"]), section)
