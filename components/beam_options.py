"""The Beam options every Beam job of the product starts from when the user gives none."""

import contextlib
import difflib
import importlib
import io
import logging
import os
from typing import Any, Iterator, List, Sequence

from data.errors import UserError


def default_beam_args() -> List[str]:
    """DirectRunner fanned out over this machine's cores."""
    return [
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={os.cpu_count() or 1}",
    ]


# Beam knows its DaskRunner only by import path (it is not among StandardOptions.ALL_KNOWN_RUNNERS).
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


# What Beam 2.74's DaskRunner lacks that the pipeline's Beam components need (docs/batch-scoring.md, "Dask", with
# each component's error; tests/test_batch_dask.py shows the gaps on a real LocalCluster). Batch scoring avoids them.
DASK_GAPS = (
    "it translates only Create, ParDo, GroupByKey and Flatten, so a Read (how StatisticsGen, Transform and the "
    "Evaluator read their examples) fails the run; it computes only the last branch of a pipeline, drops what a DoFn "
    "emits in finish_bundle (how WriteToTFRecord reports its files) and gives every consumer of a Partition all of its "
    "elements, so ExampleGen 'succeeds' with empty or missing splits"
)


class UnsupportedRunnerError(UserError):
    """A Beam runner that cannot run the product's jobs correctly (an error rather than a wrong or partial output)."""


def dask_beam_args(scheduler_address: str, partitions: int = 0) -> List[str]:
    """Beam's DaskRunner on the Dask cluster whose scheduler listens at `scheduler_address` (tcp://host:port).

    partitions: how many Dask partitions the job's first step (a Create) is cut into, and so how many tasks run
    at once downstream; the DaskRunner otherwise puts up to 128 elements in one partition, one worker's work.
    """
    return [f"--runner={DASK_RUNNER}", f"--dask_client_address={scheduler_address}"] + ([f"--dask_npartitions={partitions}"] if partitions else [])


@contextlib.contextmanager
def local_dask_cluster(workers: int = 2) -> Iterator[Any]:
    """A distributed.LocalCluster of single-threaded worker processes, closed with every client the runner opened.

    Beam's DaskRunner opens a Client per pipeline and never closes it; left open, each would retry the closed scheduler.
    """
    from distributed import LocalCluster
    from distributed.client import _global_clients  # noqa: PLC2701  distributed's registry of live clients

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield cluster
    finally:
        for client in list(_global_clients.values()):
            client.close()
        cluster.close()


def _import_runner_options(args: Sequence[str]) -> None:
    """A runner given by import path (module.Class) defines its options in its module: import it before they are checked."""
    args = list(args)
    names = [a.split("=", 1)[1] for a in args if a.startswith("--runner=")]
    names += [args[n + 1] for n, a in enumerate(args[:-1]) if a == "--runner"]
    for name in names:
        if "." not in name:
            continue
        module, _, runner = name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), runner, None)
        except ImportError as error:
            raise BeamOptionError(f"--runner={name}: cannot import {module} ({error})") from None
        if found is None:
            raise BeamOptionError(f"--runner={name}: {module} has no {runner}")


class BeamOptionError(UserError):
    """A Beam option that Beam does not know, or a value it cannot take."""


def check_beam_args(args: Sequence[str]) -> None:
    """Refuses what Beam would drop with only a log line ("Discarding unparseable args"): unknown options.

    Beam parses the flags with every PipelineOptions class's arguments; whatever is left over
    is unknown. A value Beam's parser refuses (--direct_num_workers=two) is refused here too.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    _import_runner_options(args)
    captured = {}
    beam_logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_logger.level
    beam_logger.setLevel(logging.ERROR)  # its own warning about the leftovers; the error below says more
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            PipelineOptions(list(args)).get_all_options(add_extra_args_fn=lambda parser: captured.setdefault("parser", parser))
            _, unknown = captured["parser"].parse_known_args(list(args))
    except SystemExit:  # argparse's way of refusing a value, after its usage text and the reason
        reason = printed.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1]
        raise BeamOptionError(f"Beam options: {reason}") from None
    finally:
        beam_logger.setLevel(level)
    flags = [a for a in unknown if a.startswith("-")]
    if flags:
        known = [o for action in captured["parser"]._actions for o in action.option_strings]  # noqa: SLF001  the options Beam parsed with
        hints = []
        for flag in flags:
            close = difflib.get_close_matches(flag.split("=", 1)[0], known, n=1, cutoff=0.8)
            hints.append(f"{flag}" + (f" (did you mean {close[0]}?)" if close else ""))
        raise BeamOptionError(f"unknown Beam option{'s' if len(flags) > 1 else ''}: {', '.join(hints)}")


def refuse_dask(args: Sequence[str]) -> None:
    """The pipeline's components cannot run on Beam's DaskRunner (DASK_GAPS): an error before anything runs."""
    from apache_beam.options.pipeline_options import PipelineOptions

    runner = str(PipelineOptions(list(args)).get_all_options().get("runner") or "")
    if runner.rsplit(".", 1)[-1].lower() in ("daskrunner", "dask"):
        raise UnsupportedRunnerError(f"Beam's DaskRunner cannot run the pipeline's components: {DASK_GAPS}. Use the DirectRunner "
                                     "here, or Dataflow, Flink or Spark on a cluster (docs/batch-scoring.md); batch-score runs on Dask.")
