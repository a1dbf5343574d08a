"""`influencer-recs scale-benchmark`: the pipeline and retrieval at a million influencers.

Stages (each can be skipped when its output exists): generate the synthetic
data, run the TFX pipeline on it (few epochs), then in one process: build the
ScaNN index at the settings the Trainer tuned, its recall@10 and throughput
against exact brute force on the same embeddings, the served `recommend`
signatures, Beam batch scoring at 1 and 2 workers, and `refresh-catalog` over a
next day's influencer file. Every stage records its
wall time and the peak RSS of its process tree; results go to a JSON report
and a "## Scale" section of BENCHMARKS.md. Speed numbers always come with the
baseline measured in the same run.
"""

import dataclasses
import datetime
import json
import os
import platform
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from pipeline.config import ModelConfig, PipelineConfig

HEADING = "## Scale (1M influencers)"
REPORT_FILE = "scale_report.json"
K = 10
SERVED_TARGET = 8.0  # served ScaNN `recommend` over the stock model's brute force at batch 1
TARGET_RECALL = 0.95  # recall@10 against exact that an index setting must reach to count as fast
SCANN_MODEL, STOCK_MODEL = "scann model", "stock model (brute force)"  # the served stage's two rows per batch size


class PeakRss:
    """Samples the RSS of this process and its children; peak and baseline per stage."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._peak = 0
        self.samples: List[Tuple[float, int]] = []  # (seconds since the epoch, RSS of the tree): per-component peaks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def current(self) -> int:
        import psutil

        total = 0
        for proc in [self._process, *self._process.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = self.current()
            self._peak = max(self._peak, now)
            self.samples.append((time.time(), now))
            self._stop.wait(self._interval)

    def reset(self) -> int:
        """Starts a new stage; returns the RSS now (the stage's baseline)."""
        now = self.current()
        self._peak = now
        return now

    def peak(self) -> int:
        self._peak = max(self._peak, self.current())
        return self._peak

    def close(self) -> None:
        self._stop.set()


def _gib(n_bytes: float) -> float:
    return round(n_bytes / 2**30, 2)


class Stages:
    """Wall time and peak memory (process tree) of each named stage, into the report."""

    def __init__(self, report: Dict, progress: Callable[[str], None]):
        self.report = report
        self.progress = progress
        self.rss = PeakRss()

    def run(self, name: str, fn: Callable):
        self.progress(f"scale-benchmark: {name} ...")
        base = self.rss.reset()
        started = time.monotonic()
        result = fn()
        seconds = time.monotonic() - started
        peak = self.rss.peak()
        self.report.setdefault("stages", {})[name] = {
            "seconds": round(seconds, 2), "rss_before_gib": _gib(base), "peak_rss_gib": _gib(peak),
        }
        self.progress(f"scale-benchmark: {name} took {seconds:.1f} s, peak RSS {_gib(peak)} GiB")
        return result


def scale_config(data_dir: str, output_dir: str, epochs: int = 2, max_eval_owners: int = 5000,
                 beam_args: Optional[List[str]] = None) -> PipelineConfig:
    """The pipeline at scale: few epochs, a sampled retrieval evaluation (1M-wide score rows are costly)."""
    return PipelineConfig(
        data_dir=data_dir,
        output_dir=output_dir,
        model=dataclasses.replace(ModelConfig(), epochs=epochs),
        max_eval_owners=max_eval_owners,
        beam_pipeline_args=beam_args,
    )


def _read_report(output_dir: str) -> Dict:
    path = os.path.join(output_dir, REPORT_FILE)
    return json.load(open(path)) if os.path.exists(path) else {}


def _write_report(output_dir: str, report: Dict) -> None:
    from data.atomic import atomic_text_file

    with atomic_text_file(os.path.join(output_dir, REPORT_FILE)) as handle:
        handle.write(json.dumps(report, indent=2))


def generate_stage(data_dir: str, influencers: int, owners: int, interactions: int, stages: Stages, label: str = "generate data") -> Dict[str, int]:
    from data import schema
    from data.generate import generate

    history = os.path.join(data_dir, schema.HISTORY_FILE)
    if os.path.exists(history):  # reused as it is: the report states what it holds, not what was asked for
        import pandas as pd

        owner_ids = pd.read_csv(history, usecols=[schema.OWNER_ID])[schema.OWNER_ID]
        with open(os.path.join(data_dir, schema.INFLUENCER_FILE)) as handle:
            influencer_rows = sum(1 for _ in handle) - 1
        counts = {"influencers": influencer_rows, "owners": int(owner_ids.nunique()), "interactions": len(owner_ids)}
        stages.progress(f"scale-benchmark: reusing the data in {data_dir}: {counts}")
        return counts
    return stages.run(label, lambda: generate(data_dir, influencers, owners, interactions, progress=stages.progress))


def pipeline_stage(config: PipelineConfig, label: str = "pipeline (all components)", *, stages: Stages) -> Dict[str, Dict[str, float]]:
    """Runs the pipeline; returns each component's seconds (from ML Metadata) and the peak RSS of the tree while it ran."""
    from pipeline import local_runner
    from runs.metadata import open_store, pipeline_runs, run_nodes

    stages.run(label, lambda: local_runner.run(config))
    with open_store(config.metadata_path) as store:
        nodes = run_nodes(store, pipeline_runs(store, config.pipeline_name)[-1])
    return component_peaks(stages.rss.samples, [(n.node_id, n.started, n.seconds) for n in nodes.values() if n.state != "cached"])


def component_peaks(samples: Sequence[Tuple[float, int]], runs: Sequence[Tuple[str, float, float]]) -> Dict[str, Dict[str, float]]:
    """Per component (name, started, seconds): its seconds and the highest RSS sampled while it ran (None: no sample fell in it)."""
    times = np.asarray([t for t, _ in samples], np.float64)
    rss = np.asarray([r for _, r in samples], np.float64)
    out = {}
    for name, started, seconds in runs:
        inside = rss[(times >= started) & (times <= started + seconds)]
        out[name] = {"seconds": round(seconds, 1), "peak_rss_gib": _gib(inside.max()) if len(inside) else None}
    return out


def model_under_test(config: PipelineConfig) -> Dict[str, str]:
    """The pushed version if the gates blessed one, else the Trainer's newest export (said so)."""
    from models.trainer import MEASURED_FORMAT
    from runs.metadata import latest_artifact_uri
    from serving.versions import list_versions, resolve_version_dir

    if list_versions(config.model_serving_dir):
        return {"version_dir": resolve_version_dir(config.model_serving_dir), "source": "pushed (blessed by both gates)"}
    model = latest_artifact_uri(config, "Trainer", "model")
    return {"version_dir": os.path.join(model, MEASURED_FORMAT), "source": "Trainer export (not blessed, so not pushed)"}


def baselines_stage(config: PipelineConfig, max_eval_owners: int, *, stages: Stages) -> Dict:
    """SANSA (tuned on a slice of the known rows, as EASE is) and most-popular on the retrieval gate's eval owners and
    protocol: the numbers the gate's model metrics stand beside. Needs the scale extra (models/baselines: SANSA)."""
    from components.retrieval_evaluator import eval_sample, split_interactions
    from models import features
    from models.baselines import most_popular_scores, tune_sansa
    from models.examples import read_split, split_files
    from models.retrieval_metrics import evaluate_rankings
    from runs.metadata import latest_artifact_uri

    import tensorflow as tf

    examples = latest_artifact_uri(config, "InteractionExampleGen", "examples")
    catalog = read_split(split_files(examples, features.CATALOG_SPLIT), {features.INFLUENCER_ID: tf.io.FixedLenFeature([1], tf.int64)})
    catalog_ids = np.sort(catalog[features.INFLUENCER_ID].astype(np.int64).ravel())
    known, heldout = split_interactions(examples, catalog_ids)
    pairs = eval_sample(heldout, max_eval_owners)
    n_owners, n_items = len(known.owner_vocab), len(catalog_ids)
    tuned = stages.run("SANSA: tune and fit", lambda: tune_sansa(known.pairs, n_owners, n_items, log=stages.progress))
    return {
        "eval_owners": int(len(np.unique(pairs[0]))),
        "sansa": stages.run("SANSA: score", lambda: evaluate_rankings(tuned.model, known.pairs, pairs, n_items)),
        "sansa_lambda": tuned.lam, "sansa_validation": {str(k): v for k, v in tuned.validation.items()},
        "most_popular": evaluate_rankings(most_popular_scores(known.pairs, n_items), known.pairs, pairs, n_items),
    }


def sample_owners(history_csv: str, n: int, seed: int = 0) -> np.ndarray:
    """n distinct owner ids of the history file (seeded sample)."""
    import pandas as pd

    from data import schema

    owners = np.unique(pd.read_csv(history_csv, usecols=[schema.OWNER_ID])[schema.OWNER_ID].to_numpy(np.int64))
    return np.sort(np.random.default_rng(seed).choice(owners, min(n, len(owners)), replace=False))


def _rates(methods: Dict[str, tuple], queries: np.ndarray, batch: int, rounds: int = 4) -> Dict[str, Dict]:
    """Queries/s of each method over consecutive batches of `queries`, interleaved in rounds.

    `methods[name] = (fn, calls, min_seconds)`: per round a method makes calls/rounds calls and
    keeps going until min_seconds/rounds have passed. Interleaving exposes every method to the
    same background load (this machine is shared). One untimed warm-up call each.
    """
    batches = [queries[i : i + batch] for i in range(0, len(queries) - batch + 1, batch)] or [queries[:batch]]
    totals = {name: [0, 0, 0.0] for name in methods}  # calls, queries, seconds
    for fn, _, _ in methods.values():
        fn(batches[0])
    for _ in range(rounds):
        for name, (fn, calls, min_seconds) in methods.items():
            total = totals[name]
            started, made = time.perf_counter(), 0
            while made < max(1, calls // rounds) or time.perf_counter() - started < min_seconds / rounds:
                chunk = batches[total[0] % len(batches)]
                fn(chunk)
                made, total[0], total[1] = made + 1, total[0] + 1, total[1] + len(chunk)
            total[2] += time.perf_counter() - started
    return {name: {"batch": batch, "calls": c, "queries": q, "seconds": round(sec, 3), "queries_per_second": round(q / sec, 1),
                   "ms_per_call": round(1000 * sec / c, 3)} for name, (c, q, sec) in totals.items()}


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def _child_stage(name: str, *args):
    """Runs a stage function in this (child) process; returns its result and its sub-stage records."""
    report: Dict = {}
    stages = Stages(report, _stderr)
    try:
        return globals()[name](*args, stages=stages), report.get("stages", {})
    finally:
        stages.rss.close()


def _child_main(connection, name: str, args) -> None:
    import traceback

    try:
        connection.send(("ok", _child_stage(name, *args)))
    except BaseException:  # noqa: B902  Reported to the parent, which raises.
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def _in_child(stages: Stages, name: str, *args):
    """Runs stage `name` in a fresh (spawned, non-daemonic: Beam may start workers) process."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    base, started = stages.rss.reset(), time.monotonic()
    process = context.Process(target=_child_main, args=(sender, name, args))
    process.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"{name}: its child process died (exit code {process.exitcode}; killed for memory?)") from None
    process.join()
    if status != "ok":
        raise RuntimeError(f"{name} failed in its child process:\n{payload}")
    result, records = payload
    stages.report.setdefault("stages", {}).update(records)
    stages.report["stages"][f"{name} (child process incl. start-up; peak of the whole tree)"] = {
        "seconds": round(time.monotonic() - started, 2), "rss_before_gib": _gib(base), "peak_rss_gib": _gib(stages.rss.peak())}
    return result


def _in_process(stages: Stages, name: str, *args):
    return globals()[name](*args, stages=stages)


def index_stage(version_dir: str, owner_ids: np.ndarray, calls_batch1: int = 200, calls_batch256: int = 8, *, stages: Stages) -> Dict:
    """ScaNN index build, recall@10 and throughput vs exact brute force on the model's own embeddings."""
    import gc

    import scann  # noqa: F401  Registers the Scann ops.
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    from models.index import INDEX_REPORT, search_index
    from models.topk import exact_top_k
    from models.retrieval_metrics import recall_against

    model = tf.saved_model.load(version_dir)
    ids = model.catalog_ids.numpy()
    embeddings = model.catalog_embeddings.numpy().astype(np.float32)
    query_fn = model.signatures["query_embedding"]
    queries = np.concatenate([
        query_fn(owner_id=tf.constant(owner_ids[i : i + 256], tf.int64))["embedding"].numpy() for i in range(0, len(owner_ids), 256)
    ]).astype(np.float32)
    tuned = json.load(open(os.path.join(version_dir, "assets.extra", INDEX_REPORT)))
    settings = tuned["settings"]
    out: Dict = {"catalog_size": int(len(ids)), "embedding_dim": int(embeddings.shape[1]), "queries": int(len(queries)),
                 "trainer_index_report": {k: tuned[k] for k in ("recall_at_k", "settings", "tried", "queries", "past_hires_excluded")}}

    def build():
        index = tfrs.layers.factorized_top_k.ScaNN(k=tuned["fetch"], distance_measure="dot_product", **settings)
        index.index(tf.constant(embeddings), tf.constant(ids, tf.int64))
        return index

    gc.collect()
    before = stages.rss.current()
    index = stages.run("ScaNN index build", build)
    gc.collect()
    out["index_build"] = {"settings": settings, "seconds": stages.report["stages"]["ScaNN index build"]["seconds"],
                          "rss_delta_gib": _gib(stages.rss.current() - before)}

    catalog = tf.constant(embeddings)

    @tf.function(input_signature=[tf.TensorSpec([None, embeddings.shape[1]], tf.float32)])
    def brute_force(q):
        return tf.math.top_k(tf.matmul(q, catalog, transpose_b=True), k=K)

    scann_search = lambda q: search_index(index, tf.constant(q), k=K)

    def recall():
        reference = ids[exact_top_k(queries, embeddings, K)[0]]
        found = np.concatenate([scann_search(queries[i : i + 256])[1].numpy() for i in range(0, len(queries), 256)])
        tf_exact = np.concatenate([ids[brute_force(tf.constant(queries[i : i + 256]))[1].numpy()] for i in range(0, len(queries), 256)])
        return {"scann_recall_at_10": round(recall_against(reference, found, K), 4),
                "tf_brute_force_recall_at_10": round(recall_against(reference, tf_exact, K), 4)}

    out["recall"] = stages.run("recall@10 (ScaNN vs exact)", recall)

    def throughput():
        rows = {}
        for batch, calls in ((1, calls_batch1), (256, calls_batch256)):
            measured = _rates({
                "scann": (scann_search, calls * 5, 2.0),
                "brute force (TF matmul + top_k)": (lambda q: brute_force(tf.constant(q)), calls, 0.0),
                "brute force (numpy, models.index)": (lambda q: exact_top_k(q, embeddings, K)[0], calls, 0.0),
            }, queries, batch)
            rows.update({f"{name} batch {batch}": row for name, row in measured.items()})
        for batch in (1, 256):
            rows[f"speedup batch {batch}"] = {
                "scann_over_tf_brute_force": round(rows[f"scann batch {batch}"]["queries_per_second"]
                                                   / rows[f"brute force (TF matmul + top_k) batch {batch}"]["queries_per_second"], 1)}
        return rows

    out["throughput"] = stages.run("search throughput", throughput)
    del index
    gc.collect()

    def sweep():
        """Other settings than the Trainer's (its candidates tie reordering to leaves searched): recall and speed."""
        reference = ids[exact_top_k(queries, embeddings, K)[0]]
        brute = {b: out["throughput"][f"brute force (TF matmul + top_k) batch {b}"]["queries_per_second"] for b in (1, 256)}
        rows = []
        for setting in sweep_settings(len(ids)):
            started = time.monotonic()
            index = tfrs.layers.factorized_top_k.ScaNN(k=K, distance_measure="dot_product", **setting)
            index.index(tf.constant(embeddings), tf.constant(ids, tf.int64))
            built = time.monotonic() - started
            sweep_search = lambda q: search_index(index, tf.constant(q), k=K)
            found = np.concatenate([sweep_search(queries[i : i + 256])[1].numpy() for i in range(0, len(queries), 256)])
            row = {**setting, "build_seconds": round(built, 1), "recall_at_10": round(recall_against(reference, found, K), 4)}
            for batch in (1, 256):
                qps = _rates({"scann": (sweep_search, max(1, calls_batch256), 2.0)}, queries, batch)["scann"]["queries_per_second"]
                row[f"qps_batch_{batch}"], row[f"speedup_batch_{batch}"] = qps, round(qps / brute[batch], 1)
            rows.append(row)
            del index
            gc.collect()
        return rows

    out["sweep"] = stages.run("ScaNN settings sweep", sweep)
    return out


def sweep_settings(n: int) -> List[Dict[str, int]]:
    """A few partitionings / search depths / reordering depths around sqrt(n) leaves."""
    leaves = max(2, int(np.sqrt(n)))
    grid = ((leaves, 0.1, 1000), (leaves, 0.2, 1000), (leaves, 0.2, 2000), (2 * leaves, 0.05, 1000), (2 * leaves, 0.1, 2000))
    return [dict(num_leaves=min(l, n), num_leaves_to_search=max(1, int(round(min(l, n) * share))), num_reordering_candidates=min(r, n))
            for l, share, r in grid]


def served_stage(version_dir: str, owner_ids: np.ndarray, calls_batch1: int = 50, calls_batch256: int = 4, *, stages: Stages) -> Dict:
    """The served `recommend` signature (owner id in, top-10 out): stock-ops brute force vs the ScaNN model."""
    import scann  # noqa: F401
    import tensorflow as tf

    from models.index import SCANN_SUBDIR

    stock = tf.saved_model.load(version_dir).signatures["recommend"]
    with_index = tf.saved_model.load(os.path.join(version_dir, SCANN_SUBDIR)).signatures["recommend"]

    def measure():
        rows = {}
        for batch, calls in ((1, calls_batch1), (256, calls_batch256)):
            measured = _rates({name: (lambda o, fn=fn: fn(owner_id=tf.constant(o, tf.int64)), calls, 0.0)
                               for name, fn in ((SCANN_MODEL, with_index), (STOCK_MODEL, stock))}, owner_ids, batch)
            rows.update({f"{name} batch {batch}": row for name, row in measured.items()})
        return rows

    return stages.run("served recommend signatures", measure)


# A day's change of a large catalog: shares of the influencers removed, with new features, and added.
REFRESH_SHARES = {"removed": 0.005, "changed": 0.01, "added": 0.01}


def changed_catalog(influencer_csv: str, out_csv: str, shares: Dict[str, float] = REFRESH_SHARES, seed: int = 0) -> None:
    """Writes the influencer file as a next day's export: a share of rows dropped, a share with one more Instagram
    follower (new features), and a share of new ids carrying the features of random existing rows."""
    import pandas as pd

    from data import schema

    table = pd.read_csv(influencer_csv, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    counts = {name: int(round(share * len(table))) for name, share in shares.items()}
    order = rng.permutation(len(table))
    changed = order[counts["removed"] : counts["removed"] + counts["changed"]]
    followers = table[schema.INSTA_FOLLOWERS].to_numpy(copy=True)
    followers[changed] = (followers[changed].astype(np.int64) + 1).astype(str)
    table[schema.INSTA_FOLLOWERS] = followers
    added = table.iloc[rng.choice(len(table), counts["added"])].copy()
    added[schema.INFLUENCER_ID] = (table[schema.INFLUENCER_ID].astype(np.int64).max() + 1 + np.arange(len(added))).astype(str)
    pd.concat([table.drop(index=table.index[order[: counts["removed"]]]), added]).to_csv(out_csv, index=False)


def refresh_stage(version_dir: str, data_dir: str, out_root: str, *, stages: Stages) -> Dict:
    """`refresh-catalog` of the model over a next day's influencer file (changed_catalog), on a copy of the version."""
    import shutil

    from data import schema
    from serving.catalog_refresh import refresh_catalog

    root = os.path.join(out_root, "refresh")
    shutil.rmtree(root, ignore_errors=True)  # this benchmark's own scratch folder
    source = os.path.join(root, "influencer_recs", os.path.basename(os.path.normpath(version_dir)))
    shutil.copytree(version_dir, source)
    new_file = os.path.join(root, schema.INFLUENCER_FILE)
    changed_catalog(os.path.join(data_dir, schema.INFLUENCER_FILE), new_file)
    summary = stages.run("catalog refresh", lambda: refresh_catalog(source, new_file))
    return {**dataclasses.asdict(summary), "peak_rss_gib": stages.report["stages"]["catalog refresh"]["peak_rss_gib"]}


def batch_score_stage(version_dir: str, history_csv: str, out_root: str, stages: Stages, workers=(1, 2),
                      running_mode: str = "multi_processing") -> Dict:
    """Beam batch scoring (ScaNN, k=20) of every owner in the history at 1 and 2 DirectRunner workers."""
    from components.batch_scorer.job import run_batch_score

    rows = {}
    for n in workers:
        beam_args = [f"--direct_running_mode={running_mode}", f"--direct_num_workers={n}"]
        summary = stages.run(
            f"batch scoring, {n} worker(s)",
            lambda: run_batch_score(version_dir, history_csv, os.path.join(out_root, f"batch_scores_{n}w"), k=20,
                                    output_format="jsonl", brute_force=False, beam_args=beam_args),
        )
        rows[f"{n} worker(s)"] = {key: summary[key] for key in ("owners_read", "owners_scored", "dead_lettered", "seconds", "owners_per_second", "counters")}
        rows[f"{n} worker(s)"]["peak_rss_gib"] = stages.report["stages"][f"batch scoring, {n} worker(s)"]["peak_rss_gib"]
    return rows


def run_scale_benchmark(
    data_dir: str,
    output_dir: str,
    influencers: int = 1_000_000,
    owners: int = 100_000,
    interactions: int = 1_000_000,
    epochs: int = 2,
    max_eval_owners: int = 5000,
    query_owners: int = 2000,
    skip_pipeline: bool = False,
    batch_workers=(1, 2),
    markdown_path: Optional[str] = None,
    beam_args: Optional[List[str]] = None,
    repeats: float = 1.0,
    row_ladder: Sequence[int] = (),
    progress: Callable[[str], None] = print,
) -> Dict:
    """Generate (unless data exists) -> pipeline (unless skipped) -> index / serving / batch measurements -> report.

    `row_ladder`: other history sizes, each generated with the same catalog and owners and run through the
    pipeline first (under output_dir/rows_N), so the report shows how time and memory grow with the rows.
    """
    os.makedirs(output_dir, exist_ok=True)
    config = scale_config(data_dir, os.path.join(output_dir, "run"), epochs, max_eval_owners, beam_args)
    report = _read_report(output_dir) if skip_pipeline else {}
    report.update({"data": data_dir, "requested": {"influencers": influencers, "owners": owners, "interactions": interactions},
                   "epochs": epochs, "max_eval_owners": max_eval_owners})
    stages = Stages(report, progress)
    try:
        for rows in sorted(set(row_ladder) - {interactions}):
            rung = os.path.join(output_dir, f"rows_{rows}")
            counts = generate_stage(os.path.join(rung, "data"), influencers, owners, rows, stages, f"generate data, {rows:,} rows")
            rung_config = scale_config(os.path.join(rung, "data"), os.path.join(rung, "run"), epochs, max_eval_owners, beam_args)
            components = _in_child(stages, "pipeline_stage", rung_config, f"pipeline, {rows:,} rows")
            report.setdefault("row_ladder", {})[str(rows)] = {"data_counts": counts, "components": components,
                                                               **stages.report["stages"][f"pipeline, {rows:,} rows"]}
            _write_report(output_dir, report)
        report["data_counts"] = generate_stage(data_dir, influencers, owners, interactions, stages)
        if not skip_pipeline:
            # In its own process: TFX runs components in-process, and the Trainer's memory would stay held.
            report["pipeline_components"] = _in_child(stages, "pipeline_stage", config)
            _write_report(output_dir, report)
        if report.get("row_ladder") and report.get("pipeline_components"):
            report["row_ladder"][str(interactions)] = {"data_counts": report["data_counts"], "components": report["pipeline_components"],
                                                        **report["stages"]["pipeline (all components)"]}
        measure(config, output_dir, report, stages, query_owners, batch_workers, repeats)
    finally:
        stages.rss.close()
    if markdown_path:
        write_markdown(report, markdown_path)
    return report


def measure(config: PipelineConfig, output_dir: str, report: Dict, stages: Stages, query_owners: int = 2000,
            batch_workers=(1, 2), repeats: float = 1.0, running_mode: str = "multi_processing", isolate: bool = True) -> Dict:
    """Batch-scoring, index and served-signature measurements of a finished run's model.

    With `isolate`, the index and served stages each run in a fresh child process, so
    the memory one stage's models held (TF rarely returns it) does not count in the next.
    """
    from components.retrieval_evaluator import read_gate_report
    from runs.metadata import latest_artifact_uri
    from data import schema

    model = model_under_test(config)
    report["model"] = model
    gate = read_gate_report(latest_artifact_uri(config, "RetrievalEvaluator", "evaluation"))
    report["gate"] = {k: gate.get(k) for k in ("blessed", "reasons", "model", "most_popular")}
    history = os.path.join(config.data_dir, schema.HISTORY_FILE)
    owner_ids = sample_owners(history, query_owners)
    scaled = lambda n: max(1, int(n * repeats))
    # Batch scoring first, while this process holds no model: its workers load their own copies.
    if batch_workers:
        report["batch_scoring"] = batch_score_stage(model["version_dir"], history, output_dir, stages, batch_workers, running_mode)
        _write_report(output_dir, report)
    run = _in_child if isolate else _in_process
    try:
        import sansa  # noqa: F401  (the scale extra)
    except ImportError:
        report.setdefault("notes", {})["SANSA"] = "not run: install the scale extra (`pip install -e .[scale]`, needs SuiteSparse's headers)"
    else:
        report["baselines"] = run(stages, "baselines_stage", config, report["max_eval_owners"])
        _write_report(output_dir, report)
    report["index"] = run(stages, "index_stage", model["version_dir"], owner_ids, scaled(200), scaled(8))
    _write_report(output_dir, report)
    report["served"] = run(stages, "served_stage", model["version_dir"], owner_ids, scaled(50), scaled(4))
    _write_report(output_dir, report)
    report["refresh"] = run(stages, "refresh_stage", model["version_dir"], config.data_dir, output_dir)
    _write_report(output_dir, report)
    report["peak_rss_gib"] = max(s["peak_rss_gib"] for s in report["stages"].values())
    report["finished"] = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    report["machine"] = f"{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"
    _write_report(output_dir, report)
    return report


def _throughput_table(rows: Dict[str, Dict]) -> List[str]:
    lines = ["| method | batch | queries/s | ms per call | calls timed |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        if "queries_per_second" in row:
            lines.append(f"| {name.rsplit(' batch ', 1)[0]} | {row['batch']} | {row['queries_per_second']:,.0f} | {row['ms_per_call']:.2f} | {row['calls']} |")
    return lines


def markdown_lines(report: Dict) -> List[str]:
    """The Scale section's body (the numbers of one report, and whether the targets were met)."""
    index = report["index"]
    recall = index["recall"]["scann_recall_at_10"]
    speedups = {b: index["throughput"][f"speedup batch {b}"]["scann_over_tf_brute_force"] for b in (1, 256)}
    counts = report.get("data_counts") or report["requested"]
    lines = [
        "",
        f"Run finished {report.get('finished', '?')} on {report.get('machine', '?')}, shared with other jobs. Data: `generate` "
        f"with {counts['influencers']:,} influencers, {counts['owners']:,} owners, {counts['interactions']:,} history rows; "
        f"pipeline with {report['epochs']} epoch(s) and the retrieval gate on {report['max_eval_owners']:,} sampled eval owners. "
        f"Model measured: {report['model']['source']} (`{report['model']['version_dir']}`). "
        "Reproduce: `make bench-scale` (data and run under `var/scale/`).",
        "",
        _gate_line(report.get("gate") or {}),
        "",
        *_baseline_lines(report),
        f"**ScaNN vs exact brute force** on the model's {index['catalog_size']:,} x {index['embedding_dim']} catalog embeddings, "
        f"{index['queries']:,} owner queries (their query embeddings), same process, same embeddings:",
        "",
        f"- index build at the Trainer's tuned settings {index['index_build']['settings']}: "
        f"{index['index_build']['seconds']:.1f} s, RSS +{index['index_build']['rss_delta_gib']} GiB",
        f"- recall@10 against exact top-10 (numpy): ScaNN {recall:.3f} (TF brute force {index['recall']['tf_brute_force_recall_at_10']:.3f}); "
        f"the Trainer's own tuning measured {index['trainer_index_report']['recall_at_k']:.3f} on "
        f"{index['trainer_index_report']['queries']} eval owners with past hires excluded",
        f"- ScaNN over TF brute force (matmul + top_k): {speedups[1]}x at batch 1, {speedups[256]}x at batch 256",
        f"- target (at least 10x brute force at recall@10 >= {TARGET_RECALL}): {_target_verdict(index)}",
        "",
        *_throughput_table(index["throughput"]),
        "",
    ]
    if index.get("sweep"):
        lines += ["Other index settings on the same embeddings and queries (the Trainer's tuning raises reordering only "
                  "together with leaves searched); speedup over TF brute force measured above:", "",
                  "| leaves | searched | reordered | build s | recall@10 | q/s batch 1 | speedup | q/s batch 256 | speedup |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['num_leaves']} | {r['num_leaves_to_search']} | {r['num_reordering_candidates']} | {r['build_seconds']:.1f} | "
                  f"{r['recall_at_10']:.3f} | {r['qps_batch_1']:,.0f} | {r['speedup_batch_1']}x | {r['qps_batch_256']:,.0f} | "
                  f"{r['speedup_batch_256']}x |" for r in index["sweep"]]
        lines.append("")
    if report.get("served"):
        lines += ["Served `recommend` signature (owner id in, query tower + top-10 with past hires excluded):", "",
                  *_throughput_table(report["served"]), "", _served_line(report["served"], report.get("index")), ""]
    if report.get("batch_scoring"):
        lines += ["Beam batch scoring (`run_batch_score`, ScaNN, k=20, JSONL out, multi-processing DirectRunner) of every owner "
                  "in the history, wall time including Beam start-up:", "",
                  "| workers | owners read | scored | dead-lettered | seconds | owners read/s | peak RSS (process tree) |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, row in report["batch_scoring"].items():
            lines.append(f"| {name.split()[0]} | {row['owners_read']:,} | {row['owners_scored']:,} | {row['dead_lettered']:,} | "
                         f"{row['seconds']:.0f} | {row['owners_per_second']:,.0f} | {row['peak_rss_gib']} GiB |")
        lines += ["", "Dead letters: owners the model does not know (all their history rows fell in the eval split, so it has no "
                  "train profile for them) and failures; counters: " + ", ".join(f"{k} {v:,}" for k, v in next(iter(report["batch_scoring"].values()))["counters"].items())]
        lines.append("")
    if report.get("refresh"):
        lines += [_refresh_line(report["refresh"]), ""]
    lines += ["Wall time and peak RSS per stage (RSS of the process running the stage plus its children, sampled every "
              "0.2 s; the index and served stages each run in a fresh child process):", "",
              "| stage | seconds | peak RSS GiB |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {s['seconds']:.0f} | {s['peak_rss_gib']} |" for name, s in report["stages"].items()]
    if report.get("notes"):
        lines += ["", *[f"- {name}: {note}" for name, note in report["notes"].items()]]
    if len(report.get("row_ladder") or {}) > 1:
        lines += ["", *ladder_lines(report["row_ladder"])]
    if report.get("pipeline_components"):
        lines += ["", "Pipeline components (seconds from ML Metadata; peak RSS of the pipeline's process tree while each ran, "
                  "TFX running every component in one process):", "", "| component | seconds | peak RSS GiB |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {c['seconds']:.0f} | {c['peak_rss_gib'] if c['peak_rss_gib'] is not None else '-'} |"
                  for name, c in report["pipeline_components"].items()]
    lines.append("")
    return lines


def ladder_lines(ladder: Dict[str, Dict]) -> List[str]:
    """Seconds and peak RSS per component at each history size (same catalog and owners), and the growth of the peak."""
    sizes = sorted(ladder, key=int)
    head = " | ".join(f"{int(n):,} rows: s | GiB" for n in sizes)
    lines = ["How the pipeline grows with the history rows (same catalog and owners; seconds and peak RSS of the "
             "process tree per component):", "", f"| component | {head} |", "| --- |" + " ---: | ---: |" * len(sizes)]
    names = list(ladder[sizes[-1]]["components"])
    cell = lambda c: f"{c['seconds']:.0f} | {c['peak_rss_gib'] if c.get('peak_rss_gib') is not None else '-'}" if c else "- | -"
    for name in names:
        lines.append(f"| {name} | " + " | ".join(cell(ladder[n]["components"].get(name)) for n in sizes) + " |")
    lines.append("| whole pipeline | " + " | ".join(f"{ladder[n]['seconds']:.0f} | {ladder[n]['peak_rss_gib']}" for n in sizes) + " |")
    growth = ladder[sizes[-1]]["peak_rss_gib"] / max(ladder[sizes[0]]["peak_rss_gib"], 1e-9)
    lines += ["", f"Peak RSS at {int(sizes[-1]):,} rows is {growth:.2f}x the peak at {int(sizes[0]):,} rows (target: at most 1.3x); "
              f"the whole pipeline at {int(sizes[-1]):,} rows: {ladder[sizes[-1]]['seconds'] / 60:.0f} min (target: 60), "
              f"peak {ladder[sizes[-1]]['peak_rss_gib']} GiB (target: 8)."]
    return lines


def _baseline_lines(report: Dict) -> List[str]:
    """The model beside SANSA and most-popular on the gate's eval owners (same rows, same protocol)."""
    base, model = report.get("baselines"), (report.get("gate") or {}).get("model")
    if not base or not model:
        return []
    rows = {"pipeline model (the gate's, known rows only)": model, f"SANSA (lambda {base['sansa_lambda']:g}, tuned on a slice of the known rows)": base["sansa"],
            "most-popular": base["most_popular"]}
    lines = [f"**Quality at scale**, on the gate's {base['eval_owners']:,} eval owners over the whole catalog:", "",
             "| method | recall@10 | ndcg@10 | recall@20 | ndcg@20 |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {name} | " + " | ".join(f"{m[k]:.4f}" for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")) + " |" for name, m in rows.items()]
    ratio = lambda k: model[k] / base["sansa"][k] if base["sansa"][k] else float("inf")
    return lines + ["", f"Model over SANSA: {ratio('recall@10'):.2f}x recall@10, {ratio('ndcg@10'):.2f}x ndcg@10.", ""]


def _refresh_line(refresh: Dict) -> str:
    total = refresh["unchanged"] + refresh["changed"] + refresh["added"]
    steps = ", ".join(f"{name} {seconds:.0f}" for name, seconds in refresh["step_seconds"].items())
    return (f"**Catalog refresh** (`refresh-catalog` of this model over a next day's influencer file, on a copy of the version): "
            f"{total:,} influencers ({refresh['unchanged']:,} unchanged, {refresh['changed']:,} with new features, {refresh['added']:,} new, "
            f"{refresh['removed']:,} removed) in {refresh['seconds']:.0f} s ({steps} s), peak RSS {refresh['peak_rss_gib']} GiB; "
            f"the new ScaNN index's recall@k against brute force {refresh['index_recall']:.3f}.")


def _gate_line(gate: Dict) -> str:
    verdict = "blessed" if gate.get("blessed") else "not blessed (" + "; ".join(gate.get("reasons") or []) + ")"
    metrics = lambda m: ", ".join(f"{k} {v:.4f}" for k, v in (m or {}).items() if k != "owners")
    owners = (gate.get("model") or {}).get("owners", "?")
    return (f"Retrieval gate: {verdict}; on {owners} eval owners over the whole catalog the model has {metrics(gate.get('model'))} "
            f"(most-popular: {metrics(gate.get('most_popular'))}).")


def _served_line(served: Dict[str, Dict], index: Optional[Dict]) -> str:
    """The ScaNN model's speed over the stock model's at each batch size, against SERVED_TARGET at batch 1."""
    ratios = {}
    for key, row in served.items():
        if key.startswith(f"{SCANN_MODEL} batch "):
            stock = served.get(key.replace(SCANN_MODEL, STOCK_MODEL))
            if stock:
                ratios[row["batch"]] = row["queries_per_second"] / stock["queries_per_second"]
    if not ratios:
        return "ScaNN model over the stock model: not measured."
    recall = None if not index else index["recall"]["scann_recall_at_10"]
    met = ratios.get(1, 0.0) >= SERVED_TARGET and (recall is None or recall >= TARGET_RECALL)
    return ("ScaNN model over the stock model: " + ", ".join(f"{r:.1f}x at batch {b}" for b, r in sorted(ratios.items()))
            + f" (target: at least {SERVED_TARGET:.0f}x at batch 1, with recall@10 against exact at least {TARGET_RECALL}"
            + ("" if recall is None else f"; the index's {recall:.3f}") + f"): {'met' if met else 'not met'}")


def _target_verdict(index: Dict) -> str:
    """Whether some measured index setting reached recall@10 >= TARGET_RECALL at >= 10x TF brute force (batch 1 / 256)."""
    speed = index["throughput"]
    candidates = [("the Trainer's settings", index["recall"]["scann_recall_at_10"],
                   speed["speedup batch 1"]["scann_over_tf_brute_force"], speed["speedup batch 256"]["scann_over_tf_brute_force"])]
    candidates += [(f"{r['num_leaves']} leaves / {r['num_leaves_to_search']} searched / {r['num_reordering_candidates']} reordered",
                    r["recall_at_10"], r["speedup_batch_1"], r["speedup_batch_256"]) for r in index.get("sweep", [])]
    good = [c for c in candidates if c[1] >= TARGET_RECALL]
    if not good:
        return f"not met: no measured setting reached recall@10 {TARGET_RECALL}"
    name, recall, b1, b256 = max(good, key=lambda c: c[2])
    verdict = "met" if b1 >= 10 and b256 >= 10 else "met at batch 1 only" if b1 >= 10 else "not met"
    return f"{verdict} (fastest setting at recall >= {TARGET_RECALL}: {name}, recall {recall:.3f}, {b1}x at batch 1, {b256}x at batch 256)"


def write_markdown(report: Dict, path: str) -> None:
    """Replaces only the Scale section of BENCHMARKS.md."""
    from benchmarks.report import replace_section

    replace_section(path, HEADING, markdown_lines(report))
