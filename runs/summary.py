"""The few lines a run ends with: the gates' numbers next to their thresholds, the push, where to look next."""

from typing import Any, Dict, List, Optional

from models.progress import duration
from runs.record import EVALUATOR, RETRIEVAL_EVALUATOR

# Exit codes of `influencer-recs run` (README: Exit codes).
EXIT_PUSHED = 0
EXIT_BAD_INPUT = 2
EXIT_NOT_BLESSED = 3


def exit_code(record: Dict[str, Any]) -> int:
    """0 when this run pushed a model; EXIT_NOT_BLESSED when it trained one the gates refused (nothing pushed)."""
    return EXIT_PUSHED if record["pushed"]["pushed"] else EXIT_NOT_BLESSED


def thresholds(record: Dict[str, Any]) -> Dict[str, float]:
    """The gates' thresholds as the run's executions recorded them (not as today's config says)."""
    found: Dict[str, float] = {}
    for metric_spec in record["settings"].get(EVALUATOR, {}).get("eval_config", {}).get("metrics_specs", []):
        for metric in metric_spec.get("metrics", []):  # the gated one: RatingErrors, or RootMeanSquaredError in older runs
            # Runs before the gate moved to the overall slice recorded a bare `threshold` (every slice).
            overall = [t["threshold"] for t in metric.get("per_slice_thresholds", []) if {} in t.get("slicing_specs", [])]
            for threshold in overall + ([metric["threshold"]] if "threshold" in metric else []):
                found["max_rmse"] = threshold.get("value_threshold", {}).get("upper_bound")
                found["rmse_tolerance"] = threshold.get("change_threshold", {}).get("absolute")
    retrieval = record["settings"].get(RETRIEVAL_EVALUATOR, {})
    for key in ("min_recall_at_10", "min_lift_over_popular", "max_recall_drop"):
        if key in retrieval:
            found[key] = retrieval[key]
    return {key: value for key, value in found.items() if value is not None}


def _rating_line(record: Dict[str, Any], limits: Dict[str, float]) -> str:
    rating = record["rating"]
    if "root_mean_squared_error" not in rating:
        return "rating head (TFMA): no metrics recorded"
    verdict = {True: "passed", False: "failed"}.get(rating.get("validation_ok"), "not judged")
    bounds = []
    if "max_rmse" in limits:
        bounds.append(f"at most {limits['max_rmse']:g}")
    if "rmse_tolerance" in limits:
        bounds.append(f"at most {limits['rmse_tolerance']:g} above the last blessed model")
    return f"rating head (TFMA): RMSE {rating['root_mean_squared_error']:.4f}" + (f" ({', '.join(bounds)})" if bounds else "") + f": {verdict}"


def _retrieval_line(record: Dict[str, Any], limits: Dict[str, float]) -> str:
    retrieval = record["retrieval"]
    if "model" not in retrieval:
        return "retrieval: no metrics recorded"
    model, popular = retrieval["model"]["recall@10"], retrieval["most_popular"]["recall@10"]
    floor = lambda key, text: f" ({text.format(limits[key])})" if key in limits else ""
    parts = [
        f"retrieval: recall@10 {model:.4f}" + floor("min_recall_at_10", "at least {:g}"),
        f"most-popular {popular:.4f}, " + (f"{model / popular:.2f}x" + floor("min_lift_over_popular", "at least {:g}x") if popular else "lift undefined"),
    ]
    if "last_blessed" in retrieval:
        last = retrieval["last_blessed"]["recall@10"]
        parts.append(f"last blessed model {last:.4f}" + floor("max_recall_drop", "at most {:.0%} lower allowed"))
    return "; ".join(parts)


def verdict(record: Dict[str, Any]) -> str:
    """One line: pushed or not, and how this model compares with the one it replaces (the last blessed one)."""
    retrieval = record["retrieval"]
    if not record["pushed"]["pushed"]:
        return "Not pushed: " + "; ".join(retrieval.get("reasons") or ["the gates did not bless the model"])
    if "model" not in retrieval:
        return "Pushed"
    model = retrieval["model"]["recall@10"]
    if "last_blessed" not in retrieval:
        popular = retrieval.get("most_popular", {}).get("recall@10")
        lift = f", {model / popular:.2f}x most-popular" if popular else ""
        return f"Pushed: recall@10 {model:.4f}, the first blessed model here{lift}"
    last = retrieval["last_blessed"]["recall@10"]
    change = f"{100 * (model / last - 1):+.1f}%" if last else "n/a"
    word = "better than" if model > last else "worse than" if model < last else "as good as"
    return f"Pushed: recall@10 {model:.4f}, {word} the model it replaces ({last:.4f}, {change}) on the same eval owners"


def summary_lines(record: Dict[str, Any], seconds: Optional[float] = None, report: Optional[str] = None, log: Optional[str] = None) -> List[str]:
    """The run summary, one fact per line."""
    limits = thresholds(record)
    lines = [f"Run {record['run_id']}" + (f" took {duration(seconds)}." if seconds is not None else ".")]
    lines.append("  " + _rating_line(record, limits))
    lines.append("  " + _retrieval_line(record, limits))
    if record["pushed"]["pushed"]:
        lines.append(f"  PUSHED: {record['pushed']['destination']}")
    else:
        reasons = record["retrieval"].get("reasons") or ["the gates did not bless the model"]
        lines.append("  NOT PUSHED (model not blessed): " + "; ".join(reasons))
    timed = [c for c in record["components"] if c["state"] == "complete" and c["seconds"] >= 1]
    cached = [c["node"] for c in record["components"] if c["state"] == "cached"]
    lines.append("  time: " + ", ".join(f"{c['node']} {duration(c['seconds'])}" for c in timed))
    if cached:
        lines.append("  reused from cache: " + ", ".join(cached))
    if report:
        lines.append(f"  report: {report}")
    if log:
        lines.append(f"  full log: {log}")
    return lines
