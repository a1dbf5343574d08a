"""The run report: one self-contained HTML page and a Markdown twin, with SVG charts beside them.

Sections: summary, data (every split's statistics and histograms, train-vs-eval
drift, anomalies; runs/data_views.py), the rating head's TFMA metrics, retrieval
against the baselines, the ScaNN index, training curves, wall time per
component, and the settings. The page needs no network: no script or font is
loaded from anywhere.
"""

import datetime
import html
import json
import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from data.atomic import atomic_text_file
from models.slices import OUTSIDE_CATALOG, POPULARITY_LABELS, history_labels
from runs import charts, data_views
from runs.record import ANOMALIES, SCHEMA_GEN, STATISTICS
from runs.summary import thresholds as summary_thresholds, verdict as summary_verdict

SECTIONS = ("Summary", "Data", "Rating head (TFMA)", "Retrieval", "ScaNN index", "Training", "Wall time", "Settings")
HTML_FILE, MARKDOWN_FILE = "report.html", "report.md"
_SPLITS = ("train", "eval")  # the splits ExampleValidator checks

Table = Tuple[List[str], List[List[str]]]


def report_dir(output_dir: str, run_id: str) -> str:
    """Where a run's first report is: <output>/reports/<run id>/."""
    return os.path.join(output_dir, "reports", re.sub(r"[^0-9A-Za-z_.-]", "-", run_id))


def new_report_dir(output_dir: str, run_id: str) -> str:
    """Where to write a run's report: its report_dir, or, when a report is there already, a new
    regenerated-<UTC time>/ folder inside it, so a report built again later never replaces an earlier one."""
    first = report_dir(output_dir, run_id)
    if not os.path.exists(os.path.join(first, HTML_FILE)):
        return first
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    return os.path.join(first, f"regenerated-{stamp}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e3 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _anomaly_rows(anomalies_uri: Optional[str]) -> Table:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    rows = []
    for split in _SPLITS:
        path = anomalies_uri and os.path.join(anomalies_uri, f"Split-{split}", "SchemaDiff.pb")
        if not path or not os.path.exists(path):
            continue
        anomalies = anomalies_pb2.Anomalies.FromString(open(path, "rb").read())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            rows.append([split, feature, info.short_description, info.description])
    return ["split", "feature", "anomaly", "detail"], rows


def build(record: Dict[str, Any], summary: Sequence[str], config_view: Dict[str, Any], directory: str) -> Dict[str, str]:
    """Writes report.html, report.md and their charts into `directory`; returns their paths."""
    os.makedirs(directory, exist_ok=True)
    artifacts = record["artifacts"]
    statistics = data_views.load((artifacts.get(STATISTICS, {}).get("statistics") or [None])[0])
    anomalies = _anomaly_rows((artifacts.get(ANOMALIES, {}).get("anomalies") or [None])[0])
    retrieval = record["retrieval"]
    retrieval_rows = {name: retrieval[key] for key, name in _RETRIEVAL_MODELS if key in retrieval}
    slices = retrieval.get("slices", {})
    epochs = record["training"].get("epochs", [])
    written = {
        "retrieval.svg": charts.bars(retrieval_rows, ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@10"), "Retrieval on the eval owners",
                                     marks=_gate_marks(retrieval, summary_thresholds(record))),
        "training.svg": charts.training_chart(
            [e["epoch"] for e in epochs], {
                "training loss": {"loss": [e.get("loss", float("nan")) for e in epochs]},
                "validation recall@10": {
                    "served blend": [e.get("recall@10", float("nan")) for e in epochs],
                    **({"towers alone": [e.get("towers_alone", float("nan")) for e in epochs]} if any("towers_alone" in e for e in epochs) else {}),
                },
            },
            "Training: loss and validation recall@10 per epoch", best_x=record["training"].get("best_epoch"), from_zero=("validation recall@10",),
        ),
        **{_slice_chart(slicing): charts.bars(_slice_bars(buckets), [n for k, n in _RETRIEVAL_MODELS if any(k in b for b in buckets.values())],
                                              f"Retrieval recall@10 by {slicing}") for slicing, buckets in slices.items()},
        "data.svg": charts.histogram_panels(data_views.histograms(statistics), list(statistics), "Numeric features: share of rows per histogram bucket, by split"),
        "wall_time.svg": charts.bars({c["node"]: {"seconds": c["seconds"]} for c in record["components"] if c["state"] == "complete"}, ("seconds",), "Wall time per component (s)"),
    }
    for name, svg in written.items():
        with atomic_text_file(os.path.join(directory, name)) as handle:
            handle.write(svg)
    tables = {
        "Data": [
            ("Feature statistics, every split (ids as unique counts)", data_views.feature_rows(statistics)),
            (f"Drift, train vs eval (TFDV's measures; 'large' above {data_views.DRIFT_THRESHOLD:g})", data_views.drift_rows(statistics, (artifacts.get(SCHEMA_GEN, {}).get("schema") or [None])[0])),
            ("Anomalies (ExampleValidator against data/schema.pbtxt)", anomalies),
        ],
        "Rating head (TFMA)": [("Overall slice", (["metric", "value"], [[k, _fmt(v)] for k, v in sorted(record["rating"].items()) if k != "slices"])),
                               *[(f"By {column.replace('_', ' ')} (TFMA slice)", _tfma_slice_table(buckets))
                                 for column, buckets in record["rating"].get("slices", {}).items()]],
        "Retrieval": [("Eval owners, whole catalog ranked, known hires excluded", _metric_table(retrieval_rows)),
                      *[(f"Recall@10 by {slicing} (models/slices.py)", _slice_table(buckets)) for slicing, buckets in slices.items()]],
        "ScaNN index": [("Index tuned against brute force", (["setting", "value"], [[k, _fmt(v) if not isinstance(v, dict) else json.dumps(v)] for k, v in record["index"].items() if k != "tried"]))],
        "Training": [("Schedule and blend", (["item", "value"], [[k, _fmt(v) if not isinstance(v, (dict, list)) else json.dumps(_without(v, "tried"))] for k, v in record["training"].items() if k != "epochs"]))],
        "Wall time": [("Components", (["component", "state", "seconds"], [[c["node"], c["state"], _fmt(c["seconds"])] for c in record["components"]]))],
    }
    charts_of = {"Data": ["data.svg"], "Retrieval": ["retrieval.svg", *map(_slice_chart, slices)], "Training": ["training.svg"],
                 "Wall time": ["wall_time.svg"]}
    paths = {"html": os.path.join(directory, HTML_FILE), "markdown": os.path.join(directory, MARKDOWN_FILE)}
    with atomic_text_file(paths["html"]) as handle:
        handle.write(_html(record, summary, config_view, tables, {k: [written[name] for name in v] for k, v in charts_of.items()}))
    with atomic_text_file(paths["markdown"]) as handle:
        handle.write(_markdown(record, summary, config_view, tables, charts_of))
    return paths


_RETRIEVAL_MODELS = (("model", "this run's model"), ("last_blessed", "last blessed model"), ("most_popular", "most-popular"))


def _slice_chart(slicing: str) -> str:
    return "retrieval_by_" + re.sub(r"[^0-9a-z]+", "_", slicing.lower()) + ".svg"


def _slice_bars(buckets: Dict[str, Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    """One group of bars per bucket, one bar per model (the chart's keys are the models' names)."""
    return {bucket: {name: values[key] for key, name in _RETRIEVAL_MODELS if key in values} for bucket, values in buckets.items()}


def _slice_table(buckets: Dict[str, Dict[str, float]]) -> Table:
    present = [(key, name) for key, name in _RETRIEVAL_MODELS if any(key in v for v in buckets.values())]
    return ["bucket", "owners", *[name for _, name in present]], [
        [bucket, _fmt(values["owners"]), *[_fmt(values.get(key, "")) for key, _ in present]] for bucket, values in buckets.items()]


def _tfma_slice_table(buckets: Dict[str, Dict[str, float]]) -> Table:
    metrics = sorted({name for values in buckets.values() for name in values})
    order = {label: n for n, label in enumerate([*history_labels(), *POPULARITY_LABELS, OUTSIDE_CATALOG])}
    rows = sorted(buckets.items(), key=lambda item: order.get(item[0], len(order)))
    return ["bucket", *metrics], [[bucket, *[_fmt(values.get(m, "")) for m in metrics]] for bucket, values in rows]


def _gate_marks(retrieval: Dict[str, Any], limits: Dict[str, float]) -> List[Tuple[str, float]]:
    """The RetrievalEvaluator's floors on recall@10, as the run applied them."""
    marks = []
    if limits.get("min_recall_at_10"):
        marks.append(("gate: recall@10 floor", limits["min_recall_at_10"]))
    if "min_lift_over_popular" in limits and "most_popular" in retrieval:
        marks.append((f"gate: {limits['min_lift_over_popular']:g}x most-popular recall@10", limits["min_lift_over_popular"] * retrieval["most_popular"]["recall@10"]))
    if "max_recall_drop" in limits and "last_blessed" in retrieval:
        marks.append((f"gate: at most {limits['max_recall_drop']:.0%} below the last blessed recall@10",
                      (1 - limits["max_recall_drop"]) * retrieval["last_blessed"]["recall@10"]))
    return marks


def _without(value: Any, key: str) -> Any:
    return {k: v for k, v in value.items() if k != key} if isinstance(value, dict) else value


def _metric_table(rows: Dict[str, Dict[str, float]]) -> Table:
    keys = ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "coverage@10")
    return ["model", *keys, "owners"], [[name, *[_fmt(m.get(k, "")) for k in keys], _fmt(m.get("owners", ""))] for name, m in rows.items()]


def _html_table(table: Table) -> str:
    header, rows = table
    if not rows:
        return "<p class='none'>none</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(record, summary, config_view, tables, svgs) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>influencer-recs run {html.escape(record['run_id'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}"
        ".verdict{font-size:1.2em;font-weight:bold}.none{color:#777}</style></head><body>",
        f"<h1>Run {html.escape(record['run_id'])}</h1>",
    ]
    verdict = summary_verdict(record)
    for title in SECTIONS:
        parts.append(f"<section id='{title.split()[0].lower()}'><h2>{html.escape(title)}</h2>")
        if title == "Summary":
            parts.append(f"<p class='verdict'>{html.escape(verdict)}</p><pre>{html.escape(chr(10).join(summary))}</pre>")
        elif title == "Settings":
            parts.append(f"<pre>{html.escape(json.dumps(config_view, indent=2, default=str))}</pre>")
        else:
            parts.extend(svgs.get(title, []))
            for caption, table in tables.get(title, []):
                parts.append(f"<h3>{html.escape(caption)}</h3>{_html_table(table)}")
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _md_table(table: Table) -> List[str]:
    header, rows = table
    if not rows:
        return ["none", ""]
    clean = lambda cell: cell.replace("|", "\\|").replace("\n", " ")
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header), *["| " + " | ".join(clean(c) for c in row) + " |" for row in rows], ""]


def _markdown(record, summary, config_view, tables, charts_of) -> str:
    lines = [f"# Run {record['run_id']}", ""]
    for title in SECTIONS:
        lines += [f"## {title}", ""]
        if title == "Summary":
            lines += [f"**{summary_verdict(record)}**", "", "```", *summary, "```", ""]
        elif title == "Settings":
            lines += ["```json", json.dumps(config_view, indent=2, default=str), "```", ""]
        else:
            for chart in charts_of.get(title, []):
                lines += [f"![{title}]({chart})", ""]
            for caption, table in tables.get(title, []):
                lines += [f"### {caption}", "", *_md_table(table)]
    return "\n".join(lines)
