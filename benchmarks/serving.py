"""`influencer-recs bench-serving`: REST latency of `recommend` (k=10) under concurrent clients.

Four modes, same run, same concurrency levels: the stand-in server over REST
with the stock brute-force model (as `serve` runs it, batching concurrent
requests; and with `--no-batching`), with `--scann`, and as the baseline the
SavedModel called in-process from threads (no HTTP, no JSON). Clients are
separate processes (spawned, keep-alive http.client) on loopback; the server
runs in its own subprocess, so clients and server share this machine's cores.
"""

import datetime
import http.client
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

HEADING = "## Serving latency (REST, recommend k=10)"
OWNER_IDS = list(range(1, 401))  # cycled per request: owners of the default sample (an unknown owner is a 400)
WARMUP_CALLS = 20
BASELINE = "in-process SavedModel, brute force (baseline)"
BATCHED = "REST stand-in, brute force (stock model, batching)"
UNBATCHED = "REST stand-in, brute force (--no-batching)"
# `serve`'s flags per mode; ScaNN's signatures are never batched (models.serving.ROW_INDEPENDENT_SIGNATURES).
REST_MODES = ((BATCHED, ()), (UNBATCHED, ("--no-batching",)), ("REST stand-in, ScaNN (--scann)", ("--scann",)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _body(owner: int) -> bytes:
    return json.dumps({"signature_name": "recommend", "instances": [{"owner_id": owner}]}).encode()


def _client(port: int, path: str, seconds: float, start_at: float, offset: int, results) -> None:
    """One client process: keep-alive requests until the deadline; puts (latencies_ms, errors)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}

    def call(owner: int) -> bool:
        conn.request("POST", path, body=_body(owner), headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status == 200

    for n in range(WARMUP_CALLS):
        call(OWNER_IDS[(offset + n) % len(OWNER_IDS)])
    while time.time() < start_at:
        time.sleep(0.001)
    latencies, errors, n = [], 0, offset
    deadline = start_at + seconds
    while time.time() < deadline:
        started = time.perf_counter()
        ok = call(OWNER_IDS[n % len(OWNER_IDS)])
        latencies.append((time.perf_counter() - started) * 1000)
        errors += not ok
        n += 1
    conn.close()
    results.put((latencies, errors))


def _summary(latencies: List[float], seconds: float, errors: int = 0) -> Dict[str, float]:
    values = np.asarray(latencies)
    return {
        "qps": len(values) / seconds,
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "requests": int(len(values)),
        "errors": int(errors),
    }


def rest_level(port: int, model_name: str, clients: int, seconds: float) -> Dict[str, float]:
    """`clients` spawned client processes against the server at `port`."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 5 + 0.5 * clients  # after every client has started and warmed up
    path = f"/v1/models/{model_name}:predict"
    procs = [ctx.Process(target=_client, args=(port, path, seconds, start_at, 37 * i, results)) for i in range(clients)]
    for proc in procs:
        proc.start()
    collected = [results.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    return _summary([x for lat, _ in collected for x in lat], seconds, sum(err for _, err in collected))


def in_process_level(fn, threads: int, seconds: float) -> Dict[str, float]:
    """The same call without HTTP/JSON: `threads` threads calling the signature."""
    import tensorflow as tf

    inputs = [tf.constant([owner], tf.int64) for owner in OWNER_IDS]
    latencies: List[List[float]] = [[] for _ in range(threads)]
    start_at = time.time() + 0.5
    barrier_deadline = start_at + seconds

    def work(slot: int) -> None:
        n = 37 * slot
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < barrier_deadline:
            started = time.perf_counter()
            fn(owner_id=inputs[n % len(inputs)])["influencer_id"].numpy()
            latencies[slot].append((time.perf_counter() - started) * 1000)
            n += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return _summary([x for lat in latencies for x in lat], seconds)


def cpu_per_call(fn, calls: int = 300, batch: int = 1) -> Dict[str, float]:
    """Sequential in-process calls of `batch` owners: CPU ms and wall ms per call (TF may use more than one core per call)."""
    import tensorflow as tf

    inputs = [tf.constant([OWNER_IDS[(n + i) % len(OWNER_IDS)] for i in range(batch)], tf.int64) for n in range(len(OWNER_IDS))]
    for n in range(WARMUP_CALLS):
        fn(owner_id=inputs[n])
    cpu, wall = time.process_time(), time.perf_counter()
    for n in range(calls):
        fn(owner_id=inputs[n % len(inputs)])["influencer_id"].numpy()
    return {"cpu_ms": (time.process_time() - cpu) * 1000 / calls, "wall_ms": (time.perf_counter() - wall) * 1000 / calls}


def app_cpu_per_request(base_path: str, model_name: str, calls: int = 300) -> float:
    """CPU ms per request through the app without an HTTP server or batching (JSON, codec, the model call)."""
    from serving.app import ServingApp
    from serving.registry import ModelRegistry

    app = ServingApp(ModelRegistry(base_path, model_name, poll_seconds=0))
    uri = f"/v1/models/{model_name}:predict"
    for n in range(WARMUP_CALLS):
        app.handle("POST", uri, _body(OWNER_IDS[n]))
    started = time.process_time()
    for n in range(calls):
        app.handle("POST", uri, _body(OWNER_IDS[n % len(OWNER_IDS)]))
    return (time.process_time() - started) * 1000 / calls


class _Server:
    """`influencer-recs serve` in a subprocess on a free loopback port."""

    def __init__(self, base_path: str, model_name: str, flags: Sequence[str] = ()):
        self.port = _free_port()
        command = [sys.executable, "-m", "cli", "serve", "--model-base-path", base_path, "--model-name", model_name,
                   "--port", str(self.port), "--poll-seconds", "0", *flags]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server on its next log line.
        self._log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env, text=True)
        self._wait_ready(model_name)

    def _wait_ready(self, model_name: str, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self._output()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", f"/v1/models/{model_name}")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.5)
        self.close()
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s")

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system, all its threads)."""
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _output(self) -> str:
        self._log.seek(0)
        return self._log.read()[-2000:]

    def rss_mib(self) -> float:
        """The server process's resident memory now."""
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def combine(runs: List[Dict[str, float]]) -> Dict[str, float]:
    """Repeats of one mode and level: the median of each figure, the range of QPS and p99, the requests and errors summed."""
    keys = [key for key in runs[0] if key not in ("requests", "errors")]
    combined = {key: float(np.median([run[key] for run in runs])) for key in keys}
    combined.update(requests=sum(run["requests"] for run in runs), errors=sum(run["errors"] for run in runs), repeats=len(runs))
    for key in ("qps", "p99"):
        combined[f"{key}_range"] = (min(run[key] for run in runs), max(run[key] for run in runs))
    return combined


def explain_overhead(stock, scann_model, calls: int = 300, repeats: int = 3) -> Dict[str, Dict[str, float]]:
    """CPU per single-owner call of recommend_explained against recommend (k = the default), stock and ScaNN; {} for older versions.

    Each repeat times both signatures back to back; the medians and the ratios' range are reported
    (one pass alone has read 2.3x where the next two read 1.1x: the first timed calls pay for warming up).
    """
    out: Dict[str, Dict[str, float]] = {}
    for name, model in (("brute force", stock), ("ScaNN", scann_model)):
        if "recommend_explained" not in model.signatures:
            continue
        runs = []
        for _ in range(repeats):
            plain, explained = cpu_per_call(model.signatures["recommend"], calls), cpu_per_call(model.signatures["recommend_explained"], calls)
            runs.append((plain["cpu_ms"], explained["cpu_ms"], explained["cpu_ms"] / plain["cpu_ms"]))
        plain_ms, explained_ms, ratio = (float(np.median(column)) for column in zip(*runs))
        out[name] = {"recommend_cpu_ms": plain_ms, "explained_cpu_ms": explained_ms, "ratio": ratio,
                     "ratio_range": (min(r for _, _, r in runs), max(r for _, _, r in runs)), "repeats": repeats}
    return out


def run_bench(
    base_path: str, model_name: str = "influencer_recs", seconds: float = 10.0, levels: Sequence[int] = (1, 4, 8),
    markdown_path: Optional[str] = None, progress: Callable[[str], None] = print, repeats: int = 1,
) -> Dict:
    """Runs every mode at every level `repeats` times; prints a table (medians and ranges) and optionally replaces the Markdown section."""
    import tensorflow as tf

    from models.index import SCANN_SUBDIR
    from serving.versions import model_base_of, resolve_version_dir

    load_before = os.getloadavg()[0]  # other work on the machine skews every number below
    version_dir = resolve_version_dir(base_path)
    stock = tf.saved_model.load(version_dir)
    catalog_size = int(stock.catalog_ids.shape[0])
    in_process = stock.signatures["recommend"]
    cpu = cpu_per_call(in_process)
    cpu_batch = cpu_per_call(in_process, batch=8)
    import scann  # noqa: F401

    scann_model = tf.saved_model.load(os.path.join(version_dir, SCANN_SUBDIR))
    scann_fn = scann_model.signatures["recommend"]
    cpu_scann = cpu_per_call(scann_fn)
    explain_cost = explain_overhead(stock, scann_model)
    for name, cost in explain_cost.items():
        progress(f"recommend_explained, {name}: {cost['explained_cpu_ms']:.2f} ms CPU per call against recommend's {cost['recommend_cpu_ms']:.2f} "
                 f"({cost['ratio']:.2f}x, median of {cost['repeats']}; range {cost['ratio_range'][0]:.2f}-{cost['ratio_range'][1]:.2f}x)")
    progress(f"in-process per call: brute force {cpu['cpu_ms']:.2f} ms CPU / {cpu['wall_ms']:.2f} ms wall; "
             f"ScaNN {cpu_scann['cpu_ms']:.2f} ms CPU / {cpu_scann['wall_ms']:.2f} ms wall")
    # The servers take the model base (numeric versions below it).
    serving_base = model_base_of(version_dir)
    app_cpu = app_cpu_per_request(serving_base, model_name)
    progress(f"app without HTTP server or batching, brute force: {app_cpu:.2f} ms CPU per request")
    results: Dict[str, Dict[int, Dict[str, float]]] = {}
    for level in levels:
        runs = []
        for repeat in range(repeats):
            progress(f"in-process (threads) x{level} for {seconds:.0f} s ({repeat + 1} of {repeats})")
            runs.append(in_process_level(in_process, level, seconds))
        results.setdefault(BASELINE, {})[level] = combine(runs)
    del stock, in_process, scann_fn, scann_model  # free the memory before the servers load their copies
    for mode, flags in REST_MODES:
        server = _Server(serving_base, model_name, flags)
        try:
            for level in levels:
                runs = []
                for repeat in range(repeats):
                    progress(f"{mode}: {level} client(s) for {seconds:.0f} s ({repeat + 1} of {repeats})")
                    cpu_before = server.cpu_seconds()
                    measured = rest_level(server.port, model_name, level, seconds)
                    # Includes the clients' warm-up calls: a slight overestimate.
                    measured["server_cpu_ms"] = (server.cpu_seconds() - cpu_before) * 1000 / max(1, measured["requests"])
                    runs.append(measured)
                results.setdefault(mode, {})[level] = combine(runs)
        finally:
            server.close()
    report = {
        "results": results, "catalog_size": catalog_size, "version_dir": version_dir, "seconds": seconds, "levels": list(levels), "repeats": repeats,
        "cpu": cpu, "cpu_batch": cpu_batch, "cpu_scann": cpu_scann, "explain": explain_cost, "app_cpu": app_cpu, "load_before": load_before, "load_after": os.getloadavg()[0],
    }
    for line in format_table(report):
        progress(line)
    if markdown_path:
        write_markdown(report, markdown_path, base_path)
    return report


def _with_range(m: Dict, key: str, digits: int) -> str:
    low, high = m.get(f"{key}_range", (m[key], m[key]))
    value = f"{m[key]:.{digits}f}"
    return value if m.get("repeats", 1) == 1 else f"{value} ({low:.{digits}f}-{high:.{digits}f})"


def format_table(report: Dict) -> List[str]:
    """Medians over the repeats; QPS and p99 with their range (min-max) when repeated."""
    lines = [
        "| mode | clients | QPS | p50 ms | p95 ms | p99 ms | server CPU ms/request | requests | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mode, by_level in report["results"].items():
        for level, m in by_level.items():
            cpu = f"{m['server_cpu_ms']:.1f}" if "server_cpu_ms" in m else "-"
            lines.append(
                f"| {mode} | {level} | {_with_range(m, 'qps', 0)} | {m['p50']:.1f} | {m['p95']:.1f} | {_with_range(m, 'p99', 1)} | {cpu} "
                f"| {m['requests']} | {m['errors']} |"
            )
    return lines


P99_TARGET_MS = 20.0  # the issue's targets at the top concurrency level
THROUGHPUT_TARGET = 0.5  # REST queries/s over in-process queries/s


def verdicts(report: Dict) -> List[str]:
    """Each target at the top concurrency level, met or not, from the measured numbers."""
    top = max(report["levels"])
    results = report["results"]
    lines = [
        f"p99 at {top} clients, {mode}: {by[top]['p99']:.1f} ms ({'met' if by[top]['p99'] <= P99_TARGET_MS else 'NOT met'})"
        for mode, by in results.items() if top in by and mode != BASELINE
    ]
    if BASELINE in results and top in results[BASELINE]:
        base = results[BASELINE][top]["qps"]
        for mode, by in results.items():
            if mode != BASELINE and top in by:
                ratio = by[top]["qps"] / base
                lines.append(f"throughput at {top} clients, {mode}: {by[top]['qps']:.0f} vs {base:.0f} queries/s in-process = "
                             f"{ratio:.2f}x ({'met' if ratio >= THROUGHPUT_TARGET else 'NOT met'})")
    return lines


def write_markdown(report: Dict, path: str, base_path: str) -> None:
    from benchmarks.report import replace_section

    levels = report["levels"]
    top = max(levels)
    cpu, cpu_scann = report["cpu"], report["cpu_scann"]
    cpu_batch = report.get("cpu_batch")
    server = {mode: by[top]["server_cpu_ms"] for mode, by in report["results"].items() if top in by and "server_cpu_ms" in by[top]}
    quiet = (
        "a quiet machine"
        if report["load_before"] < 1
        else "the cores were not idle when it started, e.g. an earlier benchmark winding down, so every latency here, the baseline's too, may be inflated"
    )
    batching = (
        f" One call for 8 owners costs {cpu_batch['cpu_ms']:.1f} ms of CPU ({cpu_batch['wall_ms']:.1f} ms wall), against "
        f"{8 * cpu['cpu_ms']:.1f} ms for 8 calls of one: the catalog's embeddings are read once per call, not once per owner. "
        "That is what server-side batching saves when requests queue."
        if cpu_batch else ""
    )
    per_request = "; ".join(f"{mode} {value:.1f} ms" for mode, value in server.items())
    lines = [
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}); model `{report['version_dir']}`, catalog of {report['catalog_size']:,} "
        f"influencers; {report['seconds']:.0f} s per level, run {report.get('repeats', 1)} times (medians; in parentheses "
        f"the range over the runs); one owner per request (`{{\"signature_name\":\"recommend\","
        f"\"instances\":[{{\"owner_id\":N}}]}}`), k=10. Clients are separate processes with keep-alive connections on "
        "loopback; the server (`influencer-recs serve`: Tornado's HTTP/1.1 server, the app on a thread pool) runs in its own "
        "process on the same cores. `serve` batches concurrent requests by default (no batch timeout and a call per core at "
        "most, as TF Serving advises for a CPU-only server; serving/batching.py); `--no-batching` makes one model call per "
        "request; ScaNN's signatures are never batched (their answers depend on the batch). The baseline calls the same "
        "SavedModel signature in-process from threads, one owner per call (no HTTP, no JSON). "
        f"Load average of the machine (1 min) before the run {report['load_before']:.1f} "
        f"({quiet}), after it {report['load_after']:.1f} (the benchmark's own clients and server).",
        "",
        f"Reproduce: `.venv/bin/influencer-recs bench-serving --model-base-path {base_path} --seconds {report['seconds']:g} "
        f"--levels {' '.join(str(l) for l in levels)} --repeats {report.get('repeats', 1)}` (`make bench-serving` runs the defaults on `var/run`).",
        "",
        *format_table(report),
        "",
        f"Targets (p99 at most {P99_TARGET_MS:.0f} ms, REST throughput at least {THROUGHPUT_TARGET}x in-process):",
        "",
        *[f"- {line}" for line in verdicts(report)],
        "",
        f"Where the time goes: one `recommend` call for one owner costs {cpu['cpu_ms']:.1f} ms of CPU in-process with brute "
        f"force ({cpu['wall_ms']:.1f} ms wall) and {cpu_scann['cpu_ms']:.1f} ms with ScaNN ({cpu_scann['wall_ms']:.1f} ms wall)."
        f"{batching} Through the app without an HTTP server or batching (JSON, input checks, the same call) a request costs "
        f"{report['app_cpu']:.1f} ms. The server process spent, per request at {top} clients: {per_request}; the rest of the "
        f"{os.cpu_count()} cores went to the {top} client processes. With the cores shared by server and clients, requests "
        "queue for CPU once the offered load nears capacity; p99 is that queueing.",
        "",
        *([f"Why recommended (`recommend_explained`, k=10, one owner per call, in-process; target at most 1.5x): " + "; ".join(
            f"{name} {c['explained_cpu_ms']:.2f} ms CPU against `recommend`'s {c['recommend_cpu_ms']:.2f} ms ({c['ratio']:.2f}x"
            + (f", median of {c['repeats']} repeats, range {c['ratio_range'][0]:.2f}-{c['ratio_range'][1]:.2f}x)" if "repeats" in c else ")")
            for name, c in report["explain"].items()) + ".", ""] if report.get("explain") else []),
    ]
    replace_section(path, HEADING, lines)


# Good and bad requests alike: every kind of answer must leave no memory behind.
_MIXED = [
    ("recommend", lambda n: _body(OWNER_IDS[n % len(OWNER_IDS)])),
    ("malformed JSON", lambda n: b'{"instances": ['),
    ("unknown signature", lambda n: b'{"signature_name": "nope", "instances": [1]}'),
    ("wrong type", lambda n: b'{"signature_name": "recommend", "instances": [{"owner_id": "x"}]}'),
    ("unknown owner", lambda n: _body(10**12 + n)),
    ("k out of range", lambda n: json.dumps({"signature_name": "recommend_filtered", "instances": [{
        "owner_id": OWNER_IDS[0], "k": 10**6, "max_price": -1.0, "platform": "", "min_followers": 0, "required_categories": "", "exclude_ids": [-1]}]}).encode()),
]


def _send(port: int, path: str, first: int, count: int) -> Dict[int, int]:
    """`count` mixed requests on one keep-alive connection; how many got each status."""
    statuses: Dict[int, int] = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for n in range(first, first + count):
        _, make = _MIXED[n % len(_MIXED)]
        conn.request("POST", path, body=make(n), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        statuses[response.status] = statuses.get(response.status, 0) + 1
    conn.close()
    return statuses


def run_memory(base_path: str, model_name: str = "influencer_recs", requests: int = 100_000, clients: int = 4,
               progress: Callable[[str], None] = print, markdown_path: Optional[str] = None) -> Dict:
    """Server RSS after the first 1,000 and after `requests` mixed good and bad requests (keep-alive clients)."""
    from concurrent.futures import ThreadPoolExecutor

    path = f"/v1/models/{model_name}:predict"
    load_before = os.getloadavg()[0]
    server = _Server(base_path, model_name)
    statuses: Dict[int, int] = {}
    marks = {}
    try:
        def batch(total: int, offset: int) -> None:
            per = total // clients
            with ThreadPoolExecutor(clients) as pool:
                for counts in pool.map(lambda c: _send(server.port, path, offset + c * per, per), range(clients)):
                    for status, n in counts.items():
                        statuses[status] = statuses.get(status, 0) + n

        started = time.time()
        batch(1000, 0)
        marks[1000] = server.rss_mib()
        progress(f"memory: RSS {marks[1000]:.0f} MiB after 1,000 requests")
        done = 1000
        step = max(1000, (requests - 1000) // 10)
        while done < requests:
            size = min(step, requests - done)
            batch(size, done)
            done += size
            marks[done] = server.rss_mib()
            progress(f"memory: RSS {marks[done]:.0f} MiB after {done:,} requests ({time.time() - started:.0f} s)")
    finally:
        server.close()
    growth = marks[max(marks)] / marks[1000] - 1
    report = {
        "requests": requests, "clients": clients, "rss_mib": marks, "growth": growth, "statuses": statuses, "kinds": [k for k, _ in _MIXED],
        "seconds": time.time() - started, "load_before": load_before,
    }
    progress(f"memory: {growth:+.1%} from 1,000 to {requests:,} requests; answers by status: {statuses}")
    if markdown_path:
        write_memory_markdown(report, markdown_path, base_path)
    return report


MEMORY_HEADING = "## Serving memory (REST, mixed good and bad requests)"
MEMORY_TARGET = 0.10  # RSS growth from the first 1,000 requests to the last


def write_memory_markdown(report: Dict, path: str, base_path: str) -> None:
    from benchmarks.report import replace_section

    marks = report["rss_mib"]
    statuses = ", ".join(f"{count:,} answered {status}" for status, count in sorted(report["statuses"].items()))
    verdict = "met" if report["growth"] <= MEMORY_TARGET else "NOT met"
    lines = [
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores; load "
        f"average before the run {report['load_before']:.1f}): `influencer-recs serve` in a subprocess, {report['clients']} keep-alive "
        f"clients, {report['requests']:,} requests cycling through {', '.join(report['kinds'])} ({statuses}).",
        "",
        f"Reproduce: `.venv/bin/influencer-recs bench-serving --model-base-path {base_path} --memory-requests {report['requests']}`.",
        "",
        "| requests | server RSS MiB |",
        "| ---: | ---: |",
        *[f"| {count:,} | {rss:.0f} |" for count, rss in sorted(marks.items())],
        "",
        f"Growth from 1,000 to {report['requests']:,} requests: {report['growth']:+.1%} (target: at most {MEMORY_TARGET:.0%}, "
        f"{verdict}); {report['seconds']:.0f} s in all.",
        "",
    ]
    replace_section(path, MEMORY_HEADING, lines)
