"""Two runs side by side: the settings that differ and how the metrics moved."""

from typing import Any, Dict, Iterator, List, Mapping, Tuple

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
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def comparison_lines(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    """What `runs compare A B` prints."""
    lines = [f"A: {a['run_id']}  ({'pushed' if a['pushed']['pushed'] else 'not pushed'})",
             f"B: {b['run_id']}  ({'pushed' if b['pushed']['pushed'] else 'not pushed'})", "", "settings that differ:"]
    differences = setting_differences(a, b)
    lines += [f"  {key}: {_show(left)} -> {_show(right)}" for key, left, right in differences] or ["  none"]
    lines += ["", f"  {'metric':28s} {'A':>10s} {'B':>10s} {'B - A':>10s}"]
    for name, left, right, delta in metric_deltas(a, b):
        lines.append(f"  {name:28s} {_show(left):>10s} {_show(right):>10s} {('%+.4f' % delta) if delta is not None else '-':>10s}")
    seconds = lambda record: sum(c["seconds"] for c in record["components"])
    lines.append(f"  {'component seconds (sum)':28s} {seconds(a):>10.0f} {seconds(b):>10.0f} {seconds(b) - seconds(a):>+10.0f}")
    return lines
