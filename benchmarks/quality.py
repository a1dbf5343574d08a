"""`influencer-recs benchmark`: the quality protocol of docs/benchmark.md on real data.

Runs the pipeline once per training seed (later seeds reuse the cached
ExampleGen and Transform), then scores on ITS split (ExampleGen's hash split:
eval 20%, the rest known): the pipeline's model (mean and spread over the
seeds), most-popular, EASE and iALS (each tuned on a validation slice of the
known rows), a replica of the seed notebook's model, and the model's
cold-start path. Writes a Markdown table and a PNG chart.
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
from models.trainer import MEASURED_FORMAT
from runs.metadata import latest_artifact_uri, stage_timings

METRIC_KEYS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
HEADING = "## Recommendation quality on the anime data"


def _timed(timings: Dict[str, float], name: str, fn: Callable):
    started = time.monotonic()
    result = fn()
    timings[name] = time.monotonic() - started
    return result


def _declared_preferences(train_owner_ids, train_item_ids, catalog) -> Dict[int, Tuple[str, float]]:
    """A stand-in for what a new owner would declare: its 3 most hired categories and mean price."""
    row_of = {int(i): n for n, i in enumerate(catalog[features.INFLUENCER_ID])}
    categories: Dict[int, Dict[str, int]] = {}
    prices: Dict[int, List[float]] = {}
    for owner, item in zip(train_owner_ids.tolist(), train_item_ids.tolist()):
        row = row_of.get(item)
        if row is None:
            continue
        counts = categories.setdefault(owner, {})
        for c in catalog[features.CATEGORIES][row]:
            counts[c] = counts.get(c, 0) + 1
        prices.setdefault(owner, []).append(float(catalog[features.PRICE][row]))
    return {
        owner: (",".join(sorted(counts, key=lambda c: (-counts[c], c))[:3]), float(np.mean(prices[owner])))
        for owner, counts in categories.items()
    }


def run_benchmark(
    config: PipelineConfig, notebook_epochs: int, markdown_path: str, progress: Callable[[str], None] = print, seeds: Sequence[int] = (0, 1, 2)
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
    return score_pipeline_output(config, notebook_epochs, markdown_path, progress, timings, models)


def _mean_and_spread(runs: List[Dict[str, float]]) -> Tuple[Dict[str, float], Dict[str, float]]:
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}, {k: float(np.std([r[k] for r in runs])) for k in METRIC_KEYS}


def score_pipeline_output(
    config: PipelineConfig, notebook_epochs: int, markdown_path: str, progress: Callable[[str], None] = print, timings=None,
    models: Optional[Sequence[str]] = None,
) -> Dict:
    """Scores a finished run's models (default: the newest) against the baselines on its split."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from components.retrieval_evaluator import split_interactions
    from models.baselines import most_popular_scores, tune_ease, tune_ials
    from models.notebook_replica import NotebookModel
    from models.retrieval_metrics import evaluate_rankings
    from models.examples import read_split, split_files
    from models.trainer import catalog_features

    timings = dict(timings or {})
    stages = stage_timings(config.metadata_path)

    examples_uri = latest_artifact_uri(config, "InteractionExampleGen", "examples")
    models = list(models or [os.path.join(latest_artifact_uri(config, "Trainer", "model"), MEASURED_FORMAT)])
    loaded = [tf.saved_model.load(path) for path in models]
    model = loaded[0]
    catalog_ids = model.catalog_ids.numpy()
    n_items = len(catalog_ids)
    train, heldout = split_interactions(examples_uri, catalog_ids)
    owner_vocab = train.owner_vocab
    evaluate = lambda scores_fn: evaluate_rankings(scores_fn, train.pairs, heldout.pairs, n_items)
    results: Dict[str, Dict[str, float]] = {}

    progress(f"benchmark: scoring the pipeline's model ({len(loaded)} seed(s)) and most-popular")

    def model_scores(m):
        query, embeddings = m.signatures["query_embedding"], m.catalog_embeddings.numpy()
        return lambda o: query(owner_id=tf.constant(owner_vocab[o], tf.int64))["embedding"].numpy() @ embeddings.T

    per_seed = _timed(timings, "score pipeline model (all seeds)", lambda: [evaluate(model_scores(m)) for m in loaded])
    mean, spread = _mean_and_spread(per_seed)
    results[f"pipeline model (two-tower + item factors), mean of {len(loaded)} seed(s)"] = mean
    results["most-popular"] = evaluate(most_popular_scores(train.pairs, n_items))

    progress("benchmark: tuning and scoring EASE and iALS")
    tuned = _timed(timings, "EASE (tune lambda + fit)", lambda: tune_ease(train.pairs, len(owner_vocab), n_items))
    results[f"EASE (lambda={tuned.lam:g})"] = _timed(timings, "score EASE", lambda: evaluate(tuned.model))
    del tuned.model
    ials = _timed(timings, "iALS (tune + fit)", lambda: tune_ials(train.pairs, len(owner_vocab), n_items))
    results["iALS ({factors} factors, reg {regularization:g}, alpha {alpha:g})".format(**ials.params)] = _timed(timings, "score iALS", lambda: evaluate(ials.model))

    progress(f"benchmark: training the notebook's model for {notebook_epochs} epochs")
    tft_output = tft.TFTransformOutput(latest_artifact_uri(config, "Transform", "transform_graph"))
    tft_layer = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    spec = tft_output.transformed_feature_spec()
    keys = (features.OWNER_PROFILE_KEY, features.INFLUENCER_FEATURES_KEY, features.LABEL_KEY)
    columns = read_split(split_files(latest_artifact_uri(config, "Transform", "transformed_examples"), features.TRAIN_SPLIT), {k: spec[k] for k in keys})
    profiles, item_features, labels = (columns[k] for k in keys)
    replica = NotebookModel(item_features.shape[1], seed=config.model.seed)
    _timed(timings, f"notebook model ({notebook_epochs} epochs)", lambda: replica.fit(profiles, item_features, labels.reshape(-1), notebook_epochs))
    catalog = read_split(split_files(examples_uri, features.CATALOG_SPLIT), {n: raw_spec[n] for n in features.INFLUENCER_RAW_FEATURES})
    order = {int(i): n for n, i in enumerate(catalog[features.INFLUENCER_ID])}
    catalog_item_features = catalog_features(catalog, tft_layer, raw_spec)[features.INFLUENCER_FEATURES_KEY].numpy()
    replica_items = replica.embed_influencers(catalog_item_features[[order[int(i)] for i in catalog_ids]])

    def replica_scores(owners: np.ndarray) -> np.ndarray:
        ids = tf.constant(owner_vocab[owners].reshape(-1, 1), tf.int64)
        profile = tft_layer({**_fill(raw_spec, len(owners)), features.OWNER_ID: ids})[features.OWNER_PROFILE_KEY].numpy()
        return replica.embed_owners(profile) @ replica_items.T

    results[f"notebook model (MSE, {notebook_epochs} epochs)"] = evaluate(replica_scores)

    progress("benchmark: cold start (history hidden, declared categories and budget only)")
    declared = _declared_preferences(owner_vocab[train.owners], catalog_ids[train.items], catalog)

    def cold_scores(m):
        cold, embeddings = m.signatures["cold_start_embedding"], m.catalog_embeddings.numpy()

        def scores(owners: np.ndarray) -> np.ndarray:
            prefs = [declared.get(int(owner_vocab[o]), ("", 0.5)) for o in owners]
            q = cold(categories=tf.constant([p[0] for p in prefs]), budget=tf.constant([p[1] for p in prefs], tf.float32))
            return q["embedding"].numpy() @ embeddings.T

        return scores

    cold_per_seed = [evaluate(cold_scores(m)) for m in loaded]
    cold_mean, cold_spread = _mean_and_spread(cold_per_seed)
    cold_start = {f"pipeline model, cold start, mean of {len(loaded)} seed(s)": cold_mean, "most-popular": results["most-popular"]}

    report = {
        "data": config.data_dir,
        "items": n_items,
        "train_rows": int(len(train.owners)),
        "eval_rows": int(len(heldout.owners)),
        "results": results,
        "cold_start": cold_start,
        "per_seed": per_seed,
        "spread": spread,
        "cold_start_per_seed": cold_per_seed,
        "cold_start_spread": cold_spread,
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
    for name, metrics in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[k]:.4f}" for k in METRIC_KEYS) + " |")
    return lines


def write_markdown(report: Dict, path: str) -> None:
    """Replaces the quality section of a Markdown file such as BENCHMARKS.md (other sections are kept), with its chart beside it."""
    chart = os.path.splitext(path)[0] + "_quality.png"
    bar_chart(report["results"], ("recall@10", "ndcg@10"), "Recall@10 (blue) and NDCG@10 (orange), same split", chart)
    section = [
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, {platform.processor() or platform.machine()}), data `{report['data']}`: "
        f"{report['items']} influencers, {report['train_rows']} known (train + validation) / {report['eval_rows']} eval history rows "
        "(ExampleGen's hash split). Protocol: [docs/benchmark.md](docs/benchmark.md) (whole catalog ranked, the owner's known "
        "influencers excluded, mean over owners with eval rows). Reproduce: `make bench`.",
        "",
        *_table(report["results"]),
        "",
        f"The pipeline model per training seed (the mean above; standard deviation recall@10 {report['spread']['recall@10']:.4f}, "
        f"ndcg@10 {report['spread']['ndcg@10']:.4f}):",
        "",
        *_table({f"seed {n}": r for n, r in enumerate(report["per_seed"])}),
        "",
        f"![quality chart]({os.path.basename(chart)})",
        "",
        "Cold start (each eval owner's history hidden; the query is built from its 3 most hired categories and its "
        "mean price, as a new owner would declare them):",
        "",
        *_table(report["cold_start"]),
        "",
        "Wall time of each stage (seconds):",
        "",
        "| stage | seconds |",
        "| --- | ---: |",
        *[f"| {name} | {seconds:.0f} |" for name, seconds in report["stage_seconds"].items()],
        "",
        f"Model config: `{report['model_config']}`",
        "",
    ]
    replace_section(path, HEADING, section)
