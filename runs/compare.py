"""The runs of an output folder: a table of them, and two side by side (the settings that differ, how the metrics moved)."""

import datetime
from typing import Any, Dict, Iterator, List, Mapping, Sequence, Tuple

from models.progress import duration

_METRICS = (
    ("rating RMSE", ("rating", "root_mean_squared_error")),
    ("rating MAE", ("rating", "mean_absolute_error")),
    ("recall@10", ("retrieval", "model", "recall@10")),
    ("ndcg@10", ("retrieval", "model", "ndcg@10")),
    ("recall@20", ("retrieval", "model", "recall@20")),
    ("ndcg@20", ("retrieval", "model", "ndcg@20")),
    ("most-popular recall@10", ("retrieval", "most_popular", "recall@10")),
    ("best epoch", ("training", "best_epoch")),
    ("max epochs", ("training", "max_epochs")),
    ("towers' share of the blend", ("training", "blend", "tower_share")),
    ("ScaNN recall@k", ("index", "recall_at_k")),
)


def _flatten(values: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    if isinstance(values, Mapping):
        for key in sorted(values):
            yield from _flatten(values[key], f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, values


def _get(record: Dict[str, Any], path: Tuple[str, ...]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def setting_differences(a: Dict[str, Any], b: Dict[str, Any]) -> List[Tuple[str, Any, Any]]:
    """(component.setting, value in a, value in b) for every recorded setting that differs."""
    left, right = dict(_flatten(a["settings"])), dict(_flatten(b["settings"]))
    return [(key, left.get(key), right.get(key)) for key in sorted(set(left) | set(right)) if left.get(key) != right.get(key)]


def metric_deltas(a: Dict[str, Any], b: Dict[str, Any]) -> List[Tuple[str, Any, Any, Any]]:
    """(metric, a, b, b - a) for every metric either run recorded."""
    rows = []
    for name, path in _METRICS:
        left, right = _get(a, path), _get(b, path)
        if left is None and right is None:
            continue
        delta = right - left if isinstance(left, (int, float)) and isinstance(right, (int, float)) else None
        rows.append((name, left, right, delta))
    return rows


def _show(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1e4 else f"{value:.4f}"
    return str(value)


def _delta(left: Any, right: Any, delta: Any) -> str:
    if delta is None:
        return "-"
    return f"{delta:+d}" if isinstance(left, int) and isinstance(right, int) else f"{delta:+.4f}"


def resolve_run(run_ids: List[str], wanted: str) -> str:
    """The run a (unique) prefix names; LookupError listing the candidates otherwise."""
    if wanted in run_ids:
        return wanted
    matches = [run_id for run_id in run_ids if run_id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise LookupError(f"run id prefix {wanted!r} is ambiguous: {', '.join(matches)}")
    raise LookupError(f"no run {wanted!r}; runs: {', '.join(run_ids)}")


def comparison_lines(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    """What `runs compare A B` prints."""
    lines = [f"A: {a['run_id']}  ({'pushed' if a['pushed']['pushed'] else 'not pushed'})",
             f"B: {b['run_id']}  ({'pushed' if b['pushed']['pushed'] else 'not pushed'})", "", "settings that differ:"]
    differences = setting_differences(a, b)
    lines += [f"  {key}: {_show(left)} -> {_show(right)}" for key, left, right in differences] or ["  none"]
    lines += ["", f"  {'metric':28s} {'A':>10s} {'B':>10s} {'B - A':>10s}"]
    for name, left, right, delta in metric_deltas(a, b):
        lines.append(f"  {name:28s} {_show(left):>10s} {_show(right):>10s} {_delta(left, right, delta):>10s}")
    seconds = lambda record: sum(c["seconds"] for c in record["components"])
    lines.append(f"  {'component seconds (sum)':28s} {seconds(a):>10.0f} {seconds(b):>10.0f} {seconds(b) - seconds(a):>+10.0f}")
    return lines


def runs_table(records: Sequence[Dict[str, Any]]) -> List[str]:
    """What `runs list` prints: one line per run, oldest first, under a header."""
    header = f"{'run':28s}  {'started':16s}  {'took':>8s}  {'history rows':>12s}  {'verdict':10s}  {'recall@10':>9s}  {'vs popular':>10s}  components"
    lines = [header]
    for record in records:
        retrieval = record["retrieval"]
        recall = retrieval.get("model", {}).get("recall@10")
        popular = retrieval.get("most_popular", {}).get("recall@10")
        started = datetime.datetime.fromtimestamp(record["started"]).strftime("%Y-%m-%d %H:%M") if record.get("started") else "-"
        verdict = "pushed" if record["pushed"]["pushed"] else "not pushed" if retrieval else "unfinished"
        cached = sum(c["state"] == "cached" for c in record["components"])
        rows = record.get("data", {}).get("history_rows")
        lines.append(
            f"{record['run_id']:28s}  {started:16s}  {duration(record.get('seconds', 0)):>8s}  {(f'{rows:,}' if rows is not None else '-'):>12s}  "
            f"{verdict:10s}  {(f'{recall:.4f}' if recall is not None else '-'):>9s}  {(f'{recall / popular:.2f}x' if recall and popular else '-'):>10s}  "
            f"{len(record['components'])} ({cached} reused)"
        )
    return lines
