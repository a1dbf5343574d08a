"""Batch scoring on each Beam runner: the DirectRunner in one process and on worker processes, and Dask.

Every owner of a history CSV scored by `run_batch_score` (ScaNN, k=20) on each runner, `repeats` times in
turn, in one Python process. A runner's first run loads the model cold, as a `batch-score` command always does;
later runs find it loaded where a process outlives a job (this process for the in-process DirectRunner, the
cluster's workers for Dask; the DirectRunner's worker processes are new each job). So the table gives the first
run and the median of the later ones (start-up, model loading and publishing included; the Dask cluster's own
start-up not), the first run's speed against the in-process DirectRunner's in the same run, and how many owners
get the very influencers the in-process run gave them.
"""

import os
import statistics
import time
from typing import Callable, Dict, List, Optional

from components.batch_scorer.job import run_batch_score
from components.batch_scorer.output import read_scores
from components.beam_options import dask_beam_args, local_dask_cluster
from benchmarks.report import replace_section

IN_PROCESS, PROCESSES, DASK = "DirectRunner, in one process", "DirectRunner, {n} worker processes", "DaskRunner, LocalCluster of {n} workers"
HEADING = "## Batch scoring on each runner"
K = 20


def rankings(out_dir: str) -> Dict[int, List[int]]:
    return {row["owner_id"]: row["influencer_ids"] for row in read_scores(out_dir)}


def same_rankings(reference: Dict[int, List[int]], other: Dict[int, List[int]]) -> int:
    """Owners of `reference` that `other` gives the very same influencers, in the same order."""
    return sum(other.get(owner) == ids for owner, ids in reference.items())


def run_batch_runners_benchmark(model_dir: str, owners: str, output_dir: str, workers: int = 2, repeats: int = 3,
                                markdown_path: Optional[str] = None, progress: Callable[[str], None] = print) -> Dict:
    seconds: Dict[str, List[float]] = {}
    results: Dict[str, Dict[int, List[int]]] = {}
    with local_dask_cluster(workers) as cluster:
        runners = {
            IN_PROCESS: ["--direct_running_mode=in_memory"],
            PROCESSES.format(n=workers): ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"],
            DASK.format(n=workers): dask_beam_args(cluster.scheduler_address, partitions=workers),
        }
        for repeat in range(repeats):
            for n, (name, args) in enumerate(runners.items()):
                out = os.path.join(output_dir, f"runner_{n}")
                started = time.monotonic()
                summary = run_batch_score(model_dir, owners, out, k=K, beam_args=args)
                seconds.setdefault(name, []).append(time.monotonic() - started)
                results[name] = rankings(out)
                progress(f"bench-batch: {name}, run {repeat + 1}/{repeats}: {summary['owners_read']:,} owners in {seconds[name][-1]:.1f} s")
    reference = results[IN_PROCESS]
    base = seconds[IN_PROCESS][0]
    report = {"owners": len(reference), "workers": workers, "repeats": repeats, "cores": os.cpu_count(), "runners": {
        name: {"first_s": round(times[0], 1), "later_median_s": round(statistics.median(times[1:]), 1) if len(times) > 1 else None,
               "first_speed_vs_in_process": round(base / times[0], 2), "same_rankings": same_rankings(reference, results[name])}
        for name, times in seconds.items()}}
    lines = markdown(report, model_dir, owners)
    progress("\n".join(lines))
    if markdown_path:
        replace_section(markdown_path, HEADING, lines)
    return report


def markdown(report: Dict, model_dir: str, owners: str) -> List[str]:
    lines = ["", f"Every owner of `{owners}` ({report['owners']:,}) scored with `{model_dir}` (ScaNN, k={K}) on each runner, "
             f"{report['repeats']} runs each in turn, on {report['cores']} cores. Seconds of the whole call (start-up, model loading, "
             "publishing; the Dask cluster's start-up not). The first run loads the model cold, as every `batch-score` command does; "
             "later runs find it loaded in the in-process runner's process and in Dask's workers, not in the DirectRunner's "
             "new worker processes. The Dask cluster's workers are up, idle, during the other runs. Reproduce: `make bench-batch`.", "",
             "| runner | first run, s | later runs, median s | first run, speed vs in one process | owners with the in-process influencers |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, row in report["runners"].items():
        later = "-" if row["later_median_s"] is None else row["later_median_s"]
        lines.append(f"| {name} | {row['first_s']} | {later} | {row['first_speed_vs_in_process']:.2f}x | {row['same_rankings']:,} of {report['owners']:,} |")
    return lines
