"""How a new influencer ranks after `refresh-catalog`, and what a refresh costs (`influencer-recs refresh-benchmark`).

Protocol: a random share of the catalog (default 5%) is held out. Run A trains on the data as it is; run B
on the data without the held-out influencers and every history row naming them. ExampleGen's split is a
hash of each row, so the rows both runs keep fall in the same splits. B's measured model (known rows only)
is refreshed with the whole catalog, so the held-out influencers come back as new ones. Both are scored on
A's eval rows that hire a held-out influencer, by owners both models know: the whole catalog ranked for the
owner, its known hires excluded, a hit when the row's influencer is in the top k.

Rows: trained in (A), refreshed (B + refresh-catalog), refreshed with zero item factors for the new
influencers (the alternative refresh.py rejects), and random (k over the owner's candidates).
"""

import dataclasses
import os
import shutil
import time
from typing import Callable, Dict

import numpy as np

from benchmarks.report import replace_section
from data import schema
from pipeline.config import PipelineConfig
from runs.metadata import latest_artifact_uri

HEADING = "## Catalog refresh: new influencers without retraining"
K = 10
_OWNER_BATCH = 512


def hold_out(data_dir: str, out_dir: str, share: float, seed: int) -> np.ndarray:
    """Writes data_dir's CSVs without a random `share` of the influencers and their history rows; returns the held-out ids."""
    import pandas as pd

    influencers = pd.read_csv(os.path.join(data_dir, schema.INFLUENCER_FILE), dtype=str, keep_default_na=False)
    history = pd.read_csv(os.path.join(data_dir, schema.HISTORY_FILE), dtype=str, keep_default_na=False)
    ids = influencers[schema.INFLUENCER_ID].astype(np.int64).to_numpy()
    held = np.sort(np.random.default_rng(seed).choice(ids, size=max(1, int(round(share * len(ids)))), replace=False))
    os.makedirs(out_dir, exist_ok=True)
    influencers[~np.isin(ids, held)].to_csv(os.path.join(out_dir, schema.INFLUENCER_FILE), index=False)
    named = history[schema.HISTORY_INFLUENCER_ID].astype(np.int64).to_numpy()
    history[~np.isin(named, held)].to_csv(os.path.join(out_dir, schema.HISTORY_FILE), index=False)
    return held


def _known_and_eval(config: PipelineConfig):
    from components.retrieval_evaluator import read_pairs
    from models import features

    uri = latest_artifact_uri(config, "InteractionExampleGen", "examples")
    known = [read_pairs(uri, split) for split in (features.TRAIN_SPLIT, features.VALIDATION_SPLIT)]
    return tuple(np.concatenate(parts) for parts in zip(*known)), read_pairs(uri, features.EVAL_SPLIT)


def target_ranks(model, embeddings: np.ndarray, catalog_ids: np.ndarray, owners: np.ndarray, targets: np.ndarray,
                 known: tuple) -> np.ndarray:
    """Each (owner, target) row's rank (0 = first) among the owner's candidates: the catalog less its known hires."""
    import tensorflow as tf

    position = {int(i): n for n, i in enumerate(catalog_ids)}
    hires: Dict[int, list] = {}
    for owner, influencer in zip(*known):
        if int(influencer) in position:
            hires.setdefault(int(owner), []).append(position[int(influencer)])
    unique, inverse = np.unique(owners, return_inverse=True)
    ranks = np.zeros(len(owners), np.int64)
    for start in range(0, len(unique), _OWNER_BATCH):
        batch = unique[start : start + _OWNER_BATCH]
        scores = model.signatures["query_embedding"](owner_id=tf.constant(batch, tf.int64))["embedding"].numpy() @ embeddings.T
        for row, owner in enumerate(batch.tolist()):
            scores[row, hires.get(owner, [])] = -np.inf
        for n in np.flatnonzero((inverse >= start) & (inverse < start + len(batch))):
            row = scores[inverse[n] - start]
            ranks[n] = int((row > row[position[int(targets[n])]]).sum())
    return ranks


def _row(ranks: np.ndarray) -> Dict[str, float]:
    return {f"recall@{K}": float((ranks < K).mean()), "median rank": float(np.median(ranks) + 1)}


def run_refresh_benchmark(config: PipelineConfig, share: float = 0.05, seed: int = 0, markdown_path: str = None,
                          progress: Callable[[str], None] = print) -> Dict:
    import tensorflow as tf

    from models.layout import MEASURED_FORMAT
    from pipeline import local_runner
    from serving.catalog_refresh import refresh_catalog

    out = config.output_dir
    held = hold_out(config.data_dir, os.path.join(out, "data_held_out"), share, seed)
    runs = {
        "a": dataclasses.replace(config, output_dir=os.path.join(out, "a")),
        "b": dataclasses.replace(config, data_dir=os.path.join(out, "data_held_out"), output_dir=os.path.join(out, "b")),
    }
    seconds = {}
    for name, run in runs.items():
        progress(f"refresh benchmark: pipeline {name.upper()} on {run.data_dir}")
        started = time.monotonic()
        local_runner.run(run)
        seconds[f"pipeline {name.upper()}"] = time.monotonic() - started
    measured = {name: os.path.join(latest_artifact_uri(run, "Trainer", "model"), MEASURED_FORMAT) for name, run in runs.items()}
    base = os.path.join(out, "refreshed")
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(measured["b"], os.path.join(base, "1"))
    progress(f"refresh benchmark: refreshing B's model with the whole catalog ({len(held):,} influencers held out)")
    started = time.monotonic()
    summary = refresh_catalog(base, os.path.join(config.data_dir, schema.INFLUENCER_FILE))
    seconds["refresh-catalog"] = time.monotonic() - started

    known_a, (eval_owners, eval_targets) = _known_and_eval(runs["a"])
    known_b, _ = _known_and_eval(runs["b"])
    trained, refreshed = tf.saved_model.load(measured["a"]), tf.saved_model.load(summary.version)
    both = lambda m, owners: m.signatures["query_embedding"](owner_id=tf.constant(owners, tf.int64))["history_size"].numpy() > 0
    rows = np.isin(eval_targets, held)
    owners, targets = eval_owners[rows], eval_targets[rows]
    unique = np.unique(owners)
    ok = np.concatenate([both(trained, unique[i : i + 4096]) & both(refreshed, unique[i : i + 4096]) for i in range(0, len(unique), 4096)])
    keep = np.isin(owners, unique[ok])
    owners, targets = owners[keep], targets[keep]
    progress(f"refresh benchmark: scoring {len(owners):,} eval rows of {len(np.unique(owners)):,} owners that hire a held-out influencer")

    refreshed_embeddings = refreshed.catalog_embeddings.numpy()
    zero = refreshed_embeddings.copy()
    width = int(refreshed.tower_width.numpy())
    zero[np.isin(refreshed.catalog_ids.numpy(), held), width:] = 0.0
    results = {
        "trained in (run A)": _row(target_ranks(trained, trained.catalog_embeddings.numpy(), trained.catalog_ids.numpy(), owners, targets, known_a)),
        "refreshed (run B + refresh-catalog)": _row(target_ranks(refreshed, refreshed_embeddings, refreshed.catalog_ids.numpy(), owners, targets, known_b)),
        "refreshed, zero item factors for new ones": _row(target_ranks(refreshed, zero, refreshed.catalog_ids.numpy(), owners, targets, known_b)),
    }
    candidates = len(refreshed.catalog_ids.numpy())
    results["random"] = {f"recall@{K}": K / candidates, "median rank": (candidates + 1) / 2}
    report = {
        "held_out": int(len(held)), "catalog": candidates, "eval_rows": int(len(owners)), "owners": int(len(np.unique(owners))),
        "results": results, "seconds": seconds, "data_dir": config.data_dir,
    }
    if markdown_path:
        replace_section(markdown_path, HEADING, markdown_lines(report))
    return report


def markdown_lines(report: Dict) -> list:
    data_dir = report["data_dir"]
    lines = [
        "",
        f"`influencer-recs refresh-benchmark --data {data_dir}`: {report['held_out']:,} of {report['catalog']:,} influencers held out of",
        "run B's training and added back by `refresh-catalog`; scored on run A's "
        f"{report['eval_rows']:,} eval rows (of {report['owners']:,} owners) that hire one of them (benchmarks/catalog_refresh.py).",
        "",
        f"| model | recall@{K} | median rank |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {row[f'recall@{K}']:.4f} | {row['median rank']:,.0f} |" for name, row in report["results"].items()]
    lines += ["", "Seconds: " + ", ".join(f"{name} {value:,.0f}" for name, value in report["seconds"].items()) + "."]
    return lines
