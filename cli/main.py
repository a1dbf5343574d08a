"""`influencer-recs`: generate / convert / validate data, run the pipeline, read its runs, serve and score.

Heavy imports (TensorFlow, TFX) happen inside the subcommands that need them,
so the data commands start in a second, not twenty. Exit codes: 0 done (for
`run`: a model was pushed), 2 bad input or options, 3 `run` trained a model the
gates did not bless (nothing pushed).
"""

import argparse
import contextlib
import os
import sys
import time
from typing import Callable, Iterator, List, Optional

import numpy as np

from cli.options import add_run_options, config_from_args, default_of
from components.batch_scorer.records import FORMATS as BATCH_SCORE_FORMATS
from pipeline.config import DEFAULT_PIPELINE_NAME, metadata_path_of
from runs.summary import EXIT_BAD_INPUT
from data.schema import INFLUENCER_FILE
from serving.catalog_refresh import MAX_REMOVED_SHARE
from serving.limits import DEFAULT_BATCH_THREADS, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, IDLE_TIMEOUT_SECONDS

MARKDOWN_HELP = "also write the results into this Markdown file's own section, e.g. BENCHMARKS.md (default: print only)"


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("influencer-recs")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _generate(args: argparse.Namespace) -> int:
    from data.generate import generate

    counts = generate(
        args.out,
        n_influencers=args.influencers,
        n_owners=args.owners,
        n_interactions=args.interactions,
        seed=args.seed,
        progress=_progress,
    )
    print(f"wrote {counts['influencers']} influencers, {counts['owners']} owners, {counts['interactions']} history rows to {args.out}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    if args.command == "convert-lastfm":
        from data.convert_lastfm import convert_lastfm as convert
    else:
        from data.convert_anime import convert_anime as convert

    counts = convert(args.src, args.out, seed=args.seed)
    print(f"wrote {counts['influencers']:,} influencers and {counts['interactions']:,} history rows to {args.out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from data.validate import validate_data

    report = validate_data(args.data, drop_invalid=args.drop_invalid, cleaned_dir=args.cleaned_dir, progress=_progress)
    print(report.summary())
    return 0


@contextlib.contextmanager
def _pipeline_console(output_dir: str, command: str, headline: str, verbose: bool = False) -> Iterator[str]:
    """What every command that runs a pipeline into `output_dir` holds while it runs: the folder's run lock
    (another run into it: exit 2, nothing of either mixed), a first line naming the full log, run's quiet
    console (entered before TensorFlow loads: its start-up lines go to the log too), and where the log is
    if it stops. Yields the log's path; whatever reads the run's record belongs inside, under the lock."""
    from pipeline import console, run_lock

    with run_lock.output_lock(output_dir):
        log = console.log_path(output_dir)
        print(f"influencer-recs {command}: {headline} (full log: {log})", file=sys.stderr, flush=True)
        try:
            with console.run_console(log, verbose=verbose):
                yield log
        except BaseException:
            print(f"the {command} stopped; the full log is {log}", file=sys.stderr)
            raise


def _run(args: argparse.Namespace) -> int:
    """Runs the pipeline with a quiet console, then prints the summary; the exit code says whether it pushed."""
    from pipeline import preflight

    config = config_from_args(args)
    preflight.check_input(config)  # bad input: exit 2 before the output folder is touched
    started = time.monotonic()
    with _pipeline_console(config.output_dir, "run", f"{config.data_dir} -> {config.output_dir}", args.verbose) as log:
        from pipeline import local_runner

        local_runner.run(config)
        record, lines, paths = _summarize(config.metadata_path, config.pipeline_name, config.output_dir, time.monotonic() - started, log)
    print("\n".join(lines))
    if record["pushed"]["pushed"]:
        _print_recommendations(record["pushed"]["destination"], _sample_owners(config.data_dir), config.export.default_k)  # this run's version
    from runs.summary import exit_code

    return exit_code(record)


def _summarize(metadata_path: str, pipeline_name: str, output_dir: str, seconds: Optional[float], log: Optional[str] = None, run_id: Optional[str] = None):
    """The run's record, its summary lines and its report (written under <output>/reports/)."""
    from runs import report
    from runs.record import run_record
    from runs.summary import summary_lines

    record = run_record(metadata_path, pipeline_name, run_id)
    directory = report.new_report_dir(output_dir, record["run_id"])
    html_path = os.path.join(directory, report.HTML_FILE)
    lines = summary_lines(record, seconds, report=html_path, log=log)
    paths = report.build(record, lines, record["settings"], directory)
    return record, lines, paths


def _report(args: argparse.Namespace) -> int:
    _, lines, paths = _summarize(metadata_path_of(args.output), args.pipeline_name, args.output, None, run_id=args.run)
    print("\n".join(lines))
    print(f"written: {paths['html']} and {paths['markdown']}")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from runs.compare import comparison_lines, runs_table
    from runs.record import list_runs, run_record

    store, name = metadata_path_of(args.output), args.pipeline_name
    if args.runs_command == "list":
        print("\n".join(runs_table([run_record(store, name, run_id, brief=True) for run_id in list_runs(store, name)])))
        return 0
    a, b = (run_record(store, name, run_id) for run_id in (args.a, args.b))
    print("\n".join(comparison_lines(a, b)))
    return 0


def _print_recommendations(model_dir: str, owners: List[int], k: int, brute_force: bool = False) -> None:
    from serving.recommender import Recommender

    recommender = Recommender(model_dir, brute_force=brute_force)
    result = recommender.recommend(owners, k)
    source = "brute force (stock ops)" if brute_force else "ScaNN index"
    print(f"model {recommender.version_dir}, {source}")
    for row, owner in enumerate(owners):
        print(f"\nowner {owner}: top {k}")
        print(f"{'rank':>4}  {'influencer':>10}  {'score':>7}  {'insta/tiktok/youtube':>24}  {'price':>5}  categories")
        for rank, (influencer, score) in enumerate(zip(result["influencer_id"][row], result["score"][row]), 1):
            if influencer < 0 or not np.isfinite(score):
                break
            info = recommender.describe(influencer)
            followers = "/".join(f"{f:,}" for f in info["followers"])
            print(f"{rank:>4}  {influencer:>10}  {score:7.4f}  {followers:>24}  {info['price']:5.2f}  {info['categories']}")


def _recommend(args: argparse.Namespace) -> int:
    _print_recommendations(args.model, args.owner, args.k, args.brute_force)
    return 0


def _batch_score(args: argparse.Namespace) -> int:
    from components.batch_scorer.job import format_summary, run_batch_score
    from models import progress

    with progress.shown(_progress):
        summary = run_batch_score(
            args.model, args.owners, args.out, k=args.k, exclude_history=args.exclude_history, output_format=args.format,
            brute_force=args.brute_force, beam_args=args.beam_extra or None, explain=args.explain,
        )
    print(format_summary(summary))
    print(f"written to {args.out}")
    return 0


def _refresh_catalog(args: argparse.Namespace) -> int:
    from models import progress
    from serving.catalog_refresh import refresh_catalog

    if args.pipeline_output:
        return _refresh_pipeline(args)
    with progress.shown(_progress):
        summary = refresh_catalog(args.model, args.influencers, allow_shrink=args.allow_shrink)
    print(summary.line())
    return 0


def _refresh_pipeline(args: argparse.Namespace) -> int:
    """refresh-catalog --pipeline-output: the same refresh as the CatalogRefresher step of the refresh pipeline, in
    that run folder's metadata store (pipeline.create_refresh_pipeline), with the console of `run`."""
    import dataclasses
    import json

    from components.catalog_refresher import SUMMARY_FILE
    from pipeline.config import PipelineConfig
    from runs.metadata import latest_artifact_uri
    from serving.catalog_refresh import RefreshSummary

    config = PipelineConfig(data_dir=os.path.dirname(os.path.abspath(args.influencers)), output_dir=args.pipeline_output)
    with _pipeline_console(config.output_dir, "refresh-catalog", f"{args.influencers} -> the model served from {config.model_serving_dir}"):
        from pipeline import local_runner

        local_runner.run_refresh(config, args.influencers, allow_shrink=args.allow_shrink)
        refreshed = latest_artifact_uri(dataclasses.replace(config, pipeline_name=config.refresh_pipeline_name), "CatalogRefresher", "refreshed_model")
        with open(os.path.join(refreshed, SUMMARY_FILE)) as handle:
            summary = RefreshSummary(**json.load(handle))
    print(summary.line())
    return 0


def _sample_owners(data_dir: str, n: int = 3) -> List[int]:
    """The first few owners of the history file, to show what the model says."""
    import csv

    from data import schema

    owners: List[int] = []
    with open(os.path.join(data_dir, schema.HISTORY_FILE), newline="") as handle:
        for row in csv.DictReader(handle):
            owner = int(float(row[schema.OWNER_ID]))
            if owner not in owners:
                owners.append(owner)
            if len(owners) == n:
                break
    return owners


def _pipeline_benchmark(args: argparse.Namespace, command: str, run: Callable) -> dict:
    """`run(config, progress)` of a benchmark that runs the pipeline, with the run's quiet console: component and
    progress lines, the full log in a file, the run lock held."""
    from pipeline import preflight
    from models import progress

    config = config_from_args(args)
    preflight.check_input(config)
    with _pipeline_console(config.output_dir, command, f"{config.data_dir} -> {config.output_dir}", args.verbose):
        return run(config, lambda message: progress.report("%s", message))


def _benchmark(args: argparse.Namespace) -> int:
    """The quality benchmark (benchmarks/quality.py)."""
    def run(config, progress):
        from benchmarks.quality import run_benchmark

        return run_benchmark(config, notebook_epochs=args.notebook_epochs, markdown_path=args.markdown, progress=progress, seeds=args.seeds, name=args.name)

    report = _pipeline_benchmark(args, "benchmark", run)
    for name, metrics in {**report["results"], **{f"cold start: {k}": v for k, v in report["cold_start"].items()}}.items():
        print(f"{name:45s} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "owners"))
    for comparison, by_key in report["paired"].items():
        print(f"{comparison:45s} " + "  ".join(f"{k} {v['ratio']:.3f}x [{v['low']:+.4f}, {v['high']:+.4f}]" for k, v in by_key.items()))
    if args.markdown:
        print(f"written to {args.markdown}")
    return 0


def _refresh_benchmark(args: argparse.Namespace) -> int:
    """How new influencers rank after refresh-catalog (benchmarks/catalog_refresh.py): two pipeline runs and a refresh."""
    from benchmarks.catalog_refresh import markdown_lines, run_refresh_benchmark

    report = _pipeline_benchmark(args, "refresh-benchmark", lambda config, progress: run_refresh_benchmark(
        config, share=args.share, seed=args.held_out_seed, markdown_path=args.markdown, progress=progress))
    print("\n".join(markdown_lines(report)))
    return 0


def _scale_benchmark(args: argparse.Namespace) -> int:
    from benchmarks.scale import markdown_lines, run_scale_benchmark

    report = run_scale_benchmark(
        args.data, args.output, influencers=args.influencers, owners=args.owners, interactions=args.interactions,
        epochs=args.epochs, max_eval_owners=args.max_eval_owners, query_owners=args.query_owners,
        skip_pipeline=args.skip_pipeline, batch_workers=tuple(args.batch_workers), markdown_path=args.markdown,
        beam_args=args.beam_extra or None, row_ladder=tuple(args.row_ladder), progress=_progress,
    )
    print("\n".join(markdown_lines(report)))
    print(f"report: {os.path.join(args.output, 'scale_report.json')}" + (f"; written to {args.markdown}" if args.markdown else ""))
    return 0


def _compile_kubeflow(args: argparse.Namespace) -> int:
    from pipeline.kubeflow_v2_runner import CONTAINER_SCHEMA_FILE, compile_pipeline

    config = config_from_args(args)
    try:
        path = compile_pipeline(config, args.image, args.out, schema_file=args.schema_file or CONTAINER_SCHEMA_FILE)
    except ValueError as error:  # a local path or no image: the user's to fix
        print(f"influencer-recs compile-kubeflow: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {path} (image {args.image}, pipeline root {config.pipeline_root}, models pushed to {config.model_serving_dir})")
    print("submit it to Vertex AI Pipelines or Kubeflow Pipelines: see deploy/kubeflow.md")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from serving.app import serve

    serve(
        args.model_base_path, args.model_name, host=args.host, port=args.port, scann=args.scann, poll_seconds=args.poll_seconds,
        max_batch=args.max_batch, max_body_bytes=args.max_body_bytes, idle_timeout=args.idle_timeout, workers=args.workers,
        batching=not args.no_batching, batch_threads=args.batch_threads,
    )
    return 0


def _bench_serving(args: argparse.Namespace) -> int:
    from benchmarks.serving import run_bench

    if args.memory_requests:
        from benchmarks.serving import run_memory

        run_memory(args.model_base_path, args.model_name, requests=args.memory_requests, progress=_progress, markdown_path=args.markdown)
        return 0
    run_bench(
        args.model_base_path, args.model_name, seconds=args.seconds, levels=args.levels, markdown_path=args.markdown, progress=_progress,
        repeats=args.repeats,
    )
    return 0


def _bench_batch(args: argparse.Namespace) -> int:
    from benchmarks.batch_runners import run_batch_runners_benchmark

    run_batch_runners_benchmark(args.model, args.owners, args.output, workers=args.workers, repeats=args.repeats,
                                markdown_path=args.markdown, progress=_progress)
    return 0


def _defaults_of(module: str, function: str) -> dict:
    """A function's keyword defaults, so an option's default is the function's own."""
    import importlib
    import inspect

    parameters = inspect.signature(getattr(importlib.import_module(module), function)).parameters
    return {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where the help text says it (or there is none)."""

    def _get_help_string(self, action):
        if "(default" in (action.help or "") or action.default in (None, False, argparse.SUPPRESS) or action.required:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="influencer-recs", description=__doc__.splitlines()[0], formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = lambda name, **kwargs: commands.add_parser(name, formatter_class=_Formatter, **kwargs)

    gen = add("generate", help="write synthetic seed-schema CSVs with a learnable structure")
    gen.add_argument("--out", required=True, help="output folder")
    sizes = _defaults_of("data.generate", "generate")
    gen.add_argument("--influencers", type=int, default=sizes["n_influencers"], help="catalog size")
    gen.add_argument("--owners", type=int, default=sizes["n_owners"], help="distinct owners in the history")
    gen.add_argument("--interactions", type=int, default=sizes["n_interactions"], help="history rows")
    gen.add_argument("--seed", type=int, default=sizes["seed"], help="random seed")
    gen.set_defaults(func=_generate)

    conv = add("convert-anime", help="convert the anime ratings data to the seed schema")
    conv.add_argument("--src", required=True, help="anime.zip, its unpacked folder, or a Kaggle anime.csv + rating.csv folder")
    conv.add_argument("--out", required=True, help="output folder")
    conv.add_argument("--seed", type=int, default=0, help="seed of the synthetic columns")
    conv.set_defaults(func=_convert)

    lastfm = add("convert-lastfm", help="convert the Last.fm listening data (HetRec 2011) to the seed schema")
    lastfm.add_argument("--src", required=True, help="hetrec2011-lastfm-2k.zip or its unpacked folder")
    lastfm.add_argument("--out", required=True, help="output folder")
    lastfm.add_argument("--seed", type=int, default=0, help="seed of the synthetic price column")
    lastfm.set_defaults(func=_convert)

    val = add("validate", help="run the pipeline's input checks and report")
    val.add_argument("--data", required=True, help="folder with the two CSVs")
    val.add_argument("--drop-invalid", action="store_true", help="drop bad rows and report counts instead of failing")
    val.add_argument("--cleaned-dir", help="with --drop-invalid: where to write the cleaned CSVs")
    val.set_defaults(func=_validate)

    run = add(
        "run", help="run the TFX pipeline locally (LocalDagRunner, SQLite, DirectRunner)",
        epilog="Exit codes: 0 pushed a model; 3 trained a model the gates did not bless (nothing pushed); 2 bad input or options.",
    )
    add_run_options(run)
    run.add_argument("-v", "--verbose", action="store_true", help="show the full TFX/TensorFlow/Beam log on the console too (it always goes to <output>/logs/)")
    run.set_defaults(func=_run)

    rep = add("report", help="write the HTML and Markdown report of a run (the newest unless --run) and print its summary")
    rep.add_argument("--output", required=True, help="the run's output folder (holds metadata.sqlite)")
    rep.add_argument("--run", help="run id, as `runs list` prints it (default: the newest run)")
    rep.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME, help="pipeline name in the metadata store")
    rep.set_defaults(func=_report)

    runs = add("runs", help="list the runs recorded in an output folder's ML Metadata, or compare two")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True, metavar="list|compare")
    for name, text in (("list", "every run, oldest first: id, pushed or not, recall@10"), ("compare", "settings that differ and metric deltas of runs A and B")):
        sub = runs_commands.add_parser(name, help=text, formatter_class=_Formatter)
        sub.add_argument("--output", required=True, help="the output folder (holds metadata.sqlite)")
        sub.add_argument("--pipeline-name", default=DEFAULT_PIPELINE_NAME, help="pipeline name in the metadata store")
        if name == "compare":
            sub.add_argument("a", help="run id A (from `runs list`)")
            sub.add_argument("b", help="run id B")
    runs.set_defaults(func=_runs)

    bench = add("benchmark", help="quality benchmark on real data (pipeline model vs baselines)")
    add_run_options(bench)
    bench.add_argument("--notebook-epochs", type=int, default=20, help="epochs of the seed notebook's model replica")
    bench.add_argument("--markdown", help=MARKDOWN_HELP)
    bench.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (one Trainer run each)")
    bench.add_argument("--name", default="anime", help="the dataset's name in the report's heading and chart (e.g. anime, lastfm)")
    bench.add_argument("-v", "--verbose", action="store_true", help="show the full TFX/TensorFlow/Beam log on the console too (it always goes to <output>/logs/)")
    bench.set_defaults(func=_benchmark)

    rbench = add("refresh-benchmark", help="how influencers added by refresh-catalog rank against the same ones trained in (two pipeline runs)")
    add_run_options(rbench)
    rbench.add_argument("--share", type=float, default=0.05, help="share of the catalog held out of training and added back by the refresh")
    rbench.add_argument("--held-out-seed", type=int, default=0, help="seed of the held-out draw")
    rbench.add_argument("--markdown", help=MARKDOWN_HELP)
    rbench.add_argument("-v", "--verbose", action="store_true", help="show the full TFX/TensorFlow/Beam log on the console too")
    rbench.set_defaults(func=_refresh_benchmark)

    scale = add("scale-benchmark", help="pipeline, ScaNN vs brute force and batch scoring at 1M influencers")
    scale.add_argument("--data", required=True, help="data folder (generated there unless it holds the CSVs already)")
    scale.add_argument("--output", required=True, help="folder for the pipeline run, batch outputs and scale_report.json")
    scale.add_argument("--influencers", type=int, default=1_000_000, help="catalog size to generate")
    scale.add_argument("--owners", type=int, default=100_000, help="distinct owners to generate")
    scale.add_argument("--interactions", type=int, default=1_000_000, help="history rows to generate")
    scale.add_argument("--row-ladder", type=int, nargs="*", default=[],
                       help="other history sizes run through the pipeline first, same catalog and owners (how cost grows with rows)")
    scale.add_argument("--epochs", type=int, default=2, help="training epochs of the two-tower model")
    scale.add_argument("--max-eval-owners", type=int, default=5000, help="eval owners the retrieval gate samples")
    scale.add_argument("--query-owners", type=int, default=2000, help="owners whose queries measure recall and throughput")
    scale.add_argument("--skip-pipeline", action="store_true", help="measure the model of an earlier run in --output")
    scale.add_argument("--batch-workers", type=int, nargs="*", default=[1, 2], help="DirectRunner worker counts for batch scoring")
    scale.add_argument("--markdown", help=MARKDOWN_HELP)
    scale.set_defaults(func=_scale_benchmark)

    rec = add("recommend", help="top-K influencers for owners from a pushed model")
    rec.add_argument("--model", required=True, help="pushed model base (<output>/serving/<name>) or one version folder")
    rec.add_argument("--owner", required=True, type=int, action="append", help="owner id (repeatable)")
    rec.add_argument("-k", type=int, default=default_of("export.default_k"), help="results per owner")
    rec.add_argument("--brute-force", action="store_true", help="use the stock-ops model instead of the ScaNN index")
    rec.set_defaults(func=_recommend)

    kfp = add(
        "compile-kubeflow",
        help="compile the pipeline for Kubeflow Pipelines / Vertex AI (writes the PipelineJob JSON; runs nothing)",
    )
    add_run_options(kfp)  # --data / --output are bucket paths here (gs://BUCKET/...)
    kfp.add_argument("--image", required=True, help="container image built from deploy/Dockerfile, e.g. REGISTRY/influencer-recs:TAG")
    kfp.add_argument("--out", default="pipeline.json", help="where to write the pipeline JSON (local or gs://)")
    kfp.add_argument("--schema-file", help="TFDV schema as the steps see it (default: the copy in the image)")
    kfp.set_defaults(func=_compile_kubeflow)

    batch = add(
        "batch-score",
        help="top-K for many owners with Apache Beam (Beam options after a bare '--', passed through untouched)",
    )
    batch.add_argument("--model", required=True, help="pushed model base (<output>/serving/<name>) or one version folder")
    batch.add_argument("--owners", required=True, help="history CSV (its distinct own_id), a folder with one, or an id list (one id per line)")
    batch.add_argument("--out", required=True, help="output folder (replaced atomically when the run succeeds)")
    batch.add_argument("-k", type=int, default=default_of("batch_score_k"), help="results per owner")
    batch.add_argument("--exclude-history", help="history CSV whose hires (own_id, inf_id) are dropped from each owner's results")
    batch.add_argument("--format", default=BATCH_SCORE_FORMATS[0], choices=BATCH_SCORE_FORMATS, help="output file format")
    batch.add_argument("--brute-force", action="store_true", help="exact scores over the whole catalog instead of the ScaNN index")
    batch.add_argument("--explain", action="store_true", help="also write why each influencer is recommended: its 3 past hires with the largest shares of its score, and the towers' share")
    batch.set_defaults(func=_batch_score)

    ref = add("refresh-catalog", help="serve a new influencer file with a pushed model, without retraining: a new version beside it")
    where = ref.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="a version folder, or the model base (<output>/serving/<name>: its newest version)")
    where.add_argument("--pipeline-output", help="a pipeline run's output folder: refresh the version it serves as a pipeline step "
                       "(CatalogRefresher), recorded in its metadata store")
    ref.add_argument("--influencers", required=True, help=f"the new influencer CSV (the columns of {INFLUENCER_FILE})")
    ref.add_argument("--allow-shrink", action="store_true", help=f"take a file that drops more than {100 * MAX_REMOVED_SHARE:.0f}%% of the served catalog")
    ref.set_defaults(func=_refresh_catalog)

    srv = add("serve", help="serve a pushed model over TF Serving's REST API (local stand-in for tensorflow_model_server)")
    srv.add_argument("--model-base-path", required=True, help="the model base (<output>/serving/<name>) holding numeric versions")
    srv.add_argument("--model-name", required=True, help="the name in the URL: /v1/models/NAME")
    srv.add_argument("--port", type=int, default=8501, help="port to listen on (0: any free port)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (loopback only by default)")
    srv.add_argument("--scann", action="store_true", help="recommend/recommend_filtered/search from <version>/scann/ (ScaNN index)")
    srv.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for a newly pushed version (0: never)")
    srv.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="most instances per request, and most rows per batched model call")
    srv.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="largest request body")
    srv.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT_SECONDS, help="seconds an idle keep-alive connection stays open (TF Serving's 50)")
    srv.add_argument("--workers", type=int, help="threads running requests (default: twice the cores, at least 8)")
    srv.add_argument("--no-batching", action="store_true", help="one model call per request, even under concurrent load")
    srv.add_argument("--batch-threads", type=int, default=DEFAULT_BATCH_THREADS, help="batched model calls at once (default: one per core)")
    srv.set_defaults(func=_serve)

    bsv = add("bench-serving", help="REST latency benchmark: stand-in brute force vs ScaNN vs in-process calls")
    bsv.add_argument("--model-base-path", required=True, help="the model base (<output>/serving/<name>)")
    bsv.add_argument("--model-name", default="influencer_recs", help="the name in the URL")
    bsv.add_argument("--seconds", type=float, default=10.0, help="load time per concurrency level, mode and repeat")
    bsv.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8], help="concurrent clients")
    bsv.add_argument("--repeats", type=int, default=3, help="runs of each mode and level (the table shows medians and ranges)")
    bsv.add_argument("--markdown", help=MARKDOWN_HELP)
    bsv.add_argument("--memory-requests", type=int, default=0, help="instead: server RSS over this many mixed good and bad requests (e.g. 100000)")
    bsv.set_defaults(func=_bench_serving)

    bbt = add("bench-batch", help="batch-score on each runner: the DirectRunner in one process and on workers, and Dask's LocalCluster")
    bbt.add_argument("--model", required=True, help="pushed model base (<output>/serving/<name>) or one version folder")
    bbt.add_argument("--owners", required=True, help="history CSV (every distinct own_id is scored) or a folder with one")
    bbt.add_argument("--output", required=True, help="folder for the runs' outputs (replaced run by run)")
    bbt.add_argument("--workers", type=int, default=2, help="worker processes of the DirectRunner and of the Dask cluster")
    bbt.add_argument("--repeats", type=int, default=3, help="runs on each runner, in turn (the table shows the first, cold, and the median of the rest)")
    bbt.add_argument("--markdown", help=MARKDOWN_HELP)
    bbt.set_defaults(func=_bench_batch)
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after a bare "--" is Beam's, verbatim.
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])  # an unknown --flag before "--" is a usage error
    args.beam_extra = argv[split + 1 :]
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == "validate" and args.drop_invalid and not args.cleaned_dir:
        build_parser().error("validate --drop-invalid needs --cleaned-dir DIR: where to write the cleaned copies (your files are never changed)")
    try:
        return args.func(args)
    except Exception as error:  # Bad input is the user's to fix: say what, not a traceback.
        user_error = _find_user_error(error)
        if user_error is None:
            raise
        print(f"influencer-recs {args.command}: {user_error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _find_user_error(error: BaseException) -> Optional[BaseException]:
    """The bad-input error behind `error`, also when a runner wrapped it."""
    from data.errors import UserError

    user_errors = (UserError, FileNotFoundError)
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, user_errors):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
