"""`influencer-recs`: generate / convert / validate data and run the pipeline.

Heavy imports (TensorFlow, TFX) happen inside the subcommands that need them,
so the data commands start in a second, not twenty.
"""

import argparse
import dataclasses
import shlex
import sys
import time
from typing import List, Optional

import numpy as np

from components.batch_scorer.output import FORMATS as BATCH_SCORE_FORMATS
from models.config import FOLLOWER_SCALINGS, ExportConfig, ModelConfig, TransformConfig
from pipeline.config import PipelineConfig

EXIT_BAD_INPUT = 2
MARKDOWN_HELP = "also write the results into this Markdown file's own section, e.g. BENCHMARKS.md (default: print only)"
# Option defaults come from the config classes themselves.
_PIPELINE = {field.name: field.default for field in dataclasses.fields(PipelineConfig)}
_TRANSFORM, _EXPORT = TransformConfig(), ExportConfig()


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


def _convert_anime(args: argparse.Namespace) -> int:
    from data.convert_anime import convert_anime

    counts = convert_anime(args.src, args.out, seed=args.seed)
    print(f"wrote {counts['influencers']} influencers and {counts['interactions']} history rows to {args.out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from data.validate import validate_data

    report = validate_data(args.data, drop_invalid=args.drop_invalid, cleaned_dir=args.cleaned_dir, progress=_progress)
    print(report.summary())
    return 0


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The PipelineConfig a `run` command line asks for."""
    beam_args = None
    if args.beam_pipeline_args is not None or args.beam_extra:
        beam_args = [arg for chunk in args.beam_pipeline_args or [] for arg in shlex.split(chunk)]
        beam_args += args.beam_extra
    return PipelineConfig(
        data_dir=args.data,
        output_dir=args.output,
        eval_ratio=args.eval_ratio,
        drop_invalid=args.drop_invalid,
        transform=TransformConfig(
            star_weight=args.star_weight,
            sentiment_weight=args.sentiment_weight,
            follower_scaling=args.follower_scaling,
            max_categories=args.max_categories,
        ),
        beam_pipeline_args=beam_args,
        enable_cache=args.enable_cache,
        batch_score=getattr(args, "batch_score", False),
        model=ModelConfig(epochs=args.epochs),
    )


def _run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from pipeline import local_runner

    started = time.monotonic()
    local_runner.run(config)
    print(f"pipeline finished in {time.monotonic() - started:.0f} s; artifacts under {config.pipeline_root}")
    from components.retrieval_evaluator import read_gate_report
    from pipeline.metadata import latest_artifact_uri

    report = read_gate_report(latest_artifact_uri(config, "RetrievalEvaluator", "evaluation"))
    if not report.get("blessed"):
        print("this run's model was not blessed, so nothing new was pushed: " + "; ".join(report.get("reasons", [])))
        return 0
    print(f"pushed to {config.model_serving_dir}; retrieval on eval owners: {report['model']}")
    _print_recommendations(config.model_serving_dir, _sample_owners(config.data_dir), config.export.default_k)
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

    summary = run_batch_score(
        args.model, args.owners, args.out, k=args.k, exclude_history=args.exclude_history, output_format=args.format,
        brute_force=args.brute_force, beam_args=args.beam_extra or None,
    )
    print(format_summary(summary))
    print(f"written to {args.out}")
    return 0


def _sample_owners(data_dir: str, n: int = 3) -> List[int]:
    """The first few owners of the history file, to show what the model says."""
    import csv
    import os

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


def _benchmark(args: argparse.Namespace) -> int:
    from benchmarks.quality import run_benchmark

    config = config_from_args(args)
    report = run_benchmark(config, notebook_epochs=args.notebook_epochs, markdown_path=args.markdown, progress=_progress, seeds=args.seeds)
    for name, metrics in {**report["results"], **{f"cold start: {k}": v for k, v in report["cold_start"].items()}}.items():
        print(f"{name:45s} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k != "owners"))
    if args.markdown:
        print(f"written to {args.markdown}")
    return 0


def _scale_benchmark(args: argparse.Namespace) -> int:
    from benchmarks.scale import markdown_lines, run_scale_benchmark

    report = run_scale_benchmark(
        args.data, args.output, influencers=args.influencers, owners=args.owners, interactions=args.interactions,
        epochs=args.epochs, max_eval_owners=args.max_eval_owners, query_owners=args.query_owners,
        skip_pipeline=args.skip_pipeline, batch_workers=tuple(args.batch_workers), markdown_path=args.markdown,
        beam_args=args.beam_extra or None, progress=_progress,
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
        max_batch=args.max_batch, max_body_bytes=args.max_body_bytes,
    )
    return 0


def _bench_serving(args: argparse.Namespace) -> int:
    from benchmarks.serving import run_bench

    run_bench(args.model_base_path, args.model_name, seconds=args.seconds, levels=args.levels, markdown_path=args.markdown, progress=_progress)
    return 0


def _add_run_options(run: argparse.ArgumentParser) -> None:
    run.add_argument("--data", required=True, help="folder with the two CSVs")
    run.add_argument("--output", required=True, help="folder for artifacts, metadata and served models")
    run.add_argument("--eval-ratio", type=float, default=_PIPELINE["eval_ratio"])
    run.add_argument("--drop-invalid", action="store_true")
    run.add_argument("--star-weight", type=float, default=_TRANSFORM.star_weight)
    run.add_argument("--sentiment-weight", type=float, default=_TRANSFORM.sentiment_weight)
    run.add_argument("--follower-scaling", choices=FOLLOWER_SCALINGS, default=_TRANSFORM.follower_scaling)
    run.add_argument("--max-categories", type=int, default=_TRANSFORM.max_categories)
    run.add_argument("--epochs", type=int, help="most training epochs of the towers (default: from the data size; early stopping on the validation split usually ends sooner)")
    run.add_argument("--enable-cache", action="store_true")
    run.add_argument("--batch-score", action="store_true", help="after a push, batch-score every owner of the history (BatchScorer)")
    run.add_argument(
        "--beam_pipeline_args",
        action="append",
        help="Beam options, e.g. --beam_pipeline_args='--direct_num_workers=4' (repeatable). Given Beam options, "
        "from here or after a bare '--', replace the default multi-processing DirectRunner and pass through untouched",
    )


def _defaults_of(module: str, function: str) -> dict:
    """A function's keyword defaults, so an option's default is the function's own."""
    import importlib
    import inspect

    parameters = inspect.signature(getattr(importlib.import_module(module), function)).parameters
    return {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="influencer-recs", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write synthetic seed-schema CSVs with a learnable structure")
    gen.add_argument("--out", required=True, help="output folder")
    sizes = _defaults_of("data.generate", "generate")
    gen.add_argument("--influencers", type=int, default=sizes["n_influencers"], help="catalog size")
    gen.add_argument("--owners", type=int, default=sizes["n_owners"], help="distinct owners in the history")
    gen.add_argument("--interactions", type=int, default=sizes["n_interactions"], help="history rows")
    gen.add_argument("--seed", type=int, default=sizes["seed"], help="random seed")
    gen.set_defaults(func=_generate)

    conv = commands.add_parser("convert-anime", help="convert the anime ratings data to the seed schema")
    conv.add_argument("--src", required=True, help="anime.zip, its unpacked folder, or a Kaggle anime.csv + rating.csv folder")
    conv.add_argument("--out", required=True, help="output folder")
    conv.add_argument("--seed", type=int, default=0, help="seed of the synthetic columns")
    conv.set_defaults(func=_convert_anime)

    val = commands.add_parser("validate", help="run the pipeline's input checks and report")
    val.add_argument("--data", required=True, help="folder with the two CSVs")
    val.add_argument("--drop-invalid", action="store_true", help="drop bad rows and report counts instead of failing")
    val.add_argument("--cleaned-dir", help="with --drop-invalid: where to write the cleaned CSVs")
    val.set_defaults(func=_validate)

    run = commands.add_parser("run", help="run the TFX pipeline locally (LocalDagRunner, SQLite, DirectRunner)")
    _add_run_options(run)
    run.set_defaults(func=_run)

    bench = commands.add_parser("benchmark", help="quality benchmark on real data (pipeline model vs baselines)")
    _add_run_options(bench)
    bench.add_argument("--notebook-epochs", type=int, default=20, help="epochs of the seed notebook's model replica")
    bench.add_argument("--markdown", help=MARKDOWN_HELP)
    bench.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (one Trainer run each; default: 0 1 2)")
    bench.set_defaults(func=_benchmark)

    scale = commands.add_parser("scale-benchmark", help="pipeline, ScaNN vs brute force and batch scoring at 1M influencers")
    scale.add_argument("--data", required=True, help="data folder (generated there unless it holds the CSVs already)")
    scale.add_argument("--output", required=True, help="folder for the pipeline run, batch outputs and scale_report.json")
    scale.add_argument("--influencers", type=int, default=1_000_000)
    scale.add_argument("--owners", type=int, default=100_000)
    scale.add_argument("--interactions", type=int, default=1_000_000)
    scale.add_argument("--epochs", type=int, default=2, help="training epochs of the two-tower model")
    scale.add_argument("--max-eval-owners", type=int, default=5000, help="eval owners the retrieval gate samples")
    scale.add_argument("--query-owners", type=int, default=2000, help="owners whose queries measure recall and throughput")
    scale.add_argument("--skip-pipeline", action="store_true", help="measure the model of an earlier run in --output")
    scale.add_argument("--batch-workers", type=int, nargs="*", default=[1, 2], help="DirectRunner worker counts for batch scoring")
    scale.add_argument("--markdown", help=MARKDOWN_HELP)
    scale.set_defaults(func=_scale_benchmark)

    rec = commands.add_parser("recommend", help="top-K influencers for owners from a pushed model")
    rec.add_argument("--model", required=True, help="pushed model base (<output>/serving/<name>) or one version folder")
    rec.add_argument("--owner", required=True, type=int, action="append", help="owner id (repeatable)")
    rec.add_argument("-k", type=int, default=_EXPORT.default_k)
    rec.add_argument("--brute-force", action="store_true", help="use the stock-ops model instead of the ScaNN index")
    rec.set_defaults(func=_recommend)

    kfp = commands.add_parser(
        "compile-kubeflow",
        help="compile the pipeline for Kubeflow Pipelines / Vertex AI (writes the PipelineJob JSON; runs nothing)",
    )
    _add_run_options(kfp)  # --data / --output are bucket paths here (gs://BUCKET/...)
    kfp.add_argument("--image", required=True, help="container image built from deploy/Dockerfile, e.g. REGISTRY/influencer-recs:TAG")
    kfp.add_argument("--out", default="pipeline.json", help="where to write the pipeline JSON (local or gs://)")
    kfp.add_argument("--schema-file", help="TFDV schema as the steps see it (default: the copy in the image)")
    kfp.set_defaults(func=_compile_kubeflow)

    batch = commands.add_parser(
        "batch-score",
        help="top-K for many owners with Apache Beam (Beam options after '--' or as unknown --flags, passed through untouched)",
    )
    batch.add_argument("--model", required=True, help="pushed model base (<output>/serving/<name>) or one version folder")
    batch.add_argument("--owners", required=True, help="history CSV (its distinct own_id), a folder with one, or an id list (one id per line)")
    batch.add_argument("--out", required=True, help="output folder (replaced atomically when the run succeeds)")
    batch.add_argument("-k", type=int, default=_PIPELINE["batch_score_k"])
    batch.add_argument("--exclude-history", help="history CSV whose hires (own_id, inf_id) are dropped from each owner's results")
    batch.add_argument("--format", default=BATCH_SCORE_FORMATS[0], choices=BATCH_SCORE_FORMATS)
    batch.add_argument("--brute-force", action="store_true", help="exact scores over the whole catalog instead of the ScaNN index")
    batch.set_defaults(func=_batch_score)

    srv = commands.add_parser("serve", help="serve a pushed model over TF Serving's REST API (local stand-in for tensorflow_model_server)")
    srv.add_argument("--model-base-path", required=True, help="the model base (<output>/serving/<name>) holding numeric versions")
    srv.add_argument("--model-name", required=True, help="the name in the URL: /v1/models/NAME")
    srv.add_argument("--port", type=int, default=8501)
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    srv.add_argument("--scann", action="store_true", help="recommend/recommend_filtered/search from <version>/scann/ (ScaNN index)")
    srv.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for a newly pushed version (0: never)")
    srv.add_argument("--max-batch", type=int, default=1024, help="most instances per request")
    srv.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024, help="largest request body")
    srv.set_defaults(func=_serve)

    bsv = commands.add_parser("bench-serving", help="REST latency benchmark: stand-in brute force vs ScaNN vs in-process calls")
    bsv.add_argument("--model-base-path", required=True, help="the model base (<output>/serving/<name>)")
    bsv.add_argument("--model-name", default="influencer_recs")
    bsv.add_argument("--seconds", type=float, default=30.0, help="load time per concurrency level and mode")
    bsv.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8], help="concurrent clients")
    bsv.add_argument("--markdown", help=MARKDOWN_HELP)
    bsv.set_defaults(func=_bench_serving)
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after a bare "--" is Beam's, verbatim.
    split = argv.index("--") if "--" in argv else len(argv)
    parser = build_parser()
    if argv[:1] == ["batch-score"]:  # unknown --flags are Beam options too
        args, unknown = parser.parse_known_args(argv[:split])
        args.beam_extra = unknown + argv[split + 1 :]
        return args
    args = parser.parse_args(argv[:split])
    args.beam_extra = argv[split + 1 :]
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.command == "validate" and args.drop_invalid and not args.cleaned_dir:
        build_parser().error("validate --drop-invalid needs --cleaned-dir")
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
