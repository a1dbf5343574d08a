"""The scale benchmark's measuring code path, at the test sample's size (numbers are not checked for speed)."""

import importlib.util
import json
import os

import pytest

from conftest import SMALL
from benchmarks import scale as scale_benchmark


def test_scale_benchmark_measures_the_run_and_replaces_only_its_section(pipeline_run, tmp_path):
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\n## Other section\n\nkept as is\n")
    out = str(tmp_path / "scale")
    os.makedirs(out)
    sizes = {"influencers": SMALL["n_influencers"], "owners": SMALL["n_owners"], "interactions": SMALL["n_interactions"]}
    report = {"epochs": pipeline_run.model.epochs, "max_eval_owners": pipeline_run.max_eval_owners, "requested": sizes}
    stages = scale_benchmark.Stages(report, progress=lambda _m: None)
    served_before = os.listdir(pipeline_run.model_serving_dir)
    try:
        scale_benchmark.measure(pipeline_run, out, report, stages, query_owners=300, batch_workers=(1,), repeats=0.05,
                              running_mode="in_memory", isolate=False)  # process start-up would dominate at this size
    finally:
        stages.rss.close()
    scale_benchmark.write_markdown(report, str(markdown))

    index = report["index"]
    assert index["catalog_size"] == sizes["influencers"] and index["queries"] == 300
    assert 0.0 <= index["recall"]["scann_recall_at_10"] <= 1.0
    assert index["recall"]["tf_brute_force_recall_at_10"] > 0.99  # exact in TF and numpy agree
    assert all(row["queries_per_second"] > 0 for row in index["throughput"].values() if "batch" in row)
    batch = report["batch_scoring"]["1 worker(s)"]
    assert batch["owners_read"] == sizes["owners"] and batch["owners_scored"] + batch["dead_lettered"] == sizes["owners"]
    assert report["peak_rss_gib"] > 0
    if importlib.util.find_spec("sansa") is None:
        assert "SANSA" in report["notes"]  # said, not silently left out
    else:  # the same eval owners and protocol as the gate: most-popular's numbers are the gate's own
        base = report["baselines"]
        assert base["eval_owners"] == report["gate"]["model"]["owners"]
        for key in ("recall@10", "ndcg@10"):
            assert base["most_popular"][key] == pytest.approx(report["gate"]["most_popular"][key])
        assert 0.0 <= base["sansa"]["recall@10"] <= 1.0 and base["sansa_lambda"] > 0
    refreshed, shares = report["refresh"], scale_benchmark.REFRESH_SHARES  # a next day's file, through refresh-catalog itself
    assert [refreshed[key] for key in shares] == [round(shares[key] * sizes["influencers"]) for key in shares]
    assert refreshed["unchanged"] + refreshed["changed"] + refreshed["removed"] == sizes["influencers"]
    assert os.listdir(pipeline_run.model_serving_dir) == served_before  # on a copy: the run's own versions untouched
    assert json.load(open(os.path.join(out, scale_benchmark.REPORT_FILE)))["index"] == json.loads(json.dumps(index))

    text = markdown.read_text()
    assert "## Other section\n\nkept as is" in text
    assert text.count(scale_benchmark.HEADING) == 1
    assert "recall@10 against exact top-10" in text and "owners read/s" in text
    assert "ScaNN model over the stock model: " in text and "x at batch 1" in text
    assert ("**Quality at scale**" in text) == ("baselines" in report)
    assert "**Catalog refresh**" in text
    scale_benchmark.write_markdown(report, str(markdown))  # a rerun replaces the section, never duplicates it
    assert markdown.read_text().count(scale_benchmark.HEADING) == 1


def test_each_component_gets_the_peak_sampled_while_it_ran():
    samples = [(10.0, 1 * 2**30), (11.0, 5 * 2**30), (12.5, 2 * 2**30), (14.0, 3 * 2**30)]
    peaks = scale_benchmark.component_peaks(samples, [("A", 10.0, 2.0), ("B", 12.0, 2.0), ("cached", 20.0, 0.0)])
    assert peaks == {"A": {"seconds": 2.0, "peak_rss_gib": 5.0}, "B": {"seconds": 2.0, "peak_rss_gib": 3.0},
                     "cached": {"seconds": 0.0, "peak_rss_gib": None}}


def test_the_row_ladder_table_shows_each_size_and_the_growth_of_the_peak():
    rung = lambda seconds, peak: {"seconds": seconds, "peak_rss_gib": peak,
                                  "components": {"Trainer": {"seconds": seconds / 2, "peak_rss_gib": peak}, "Pusher": {"seconds": 1.0, "peak_rss_gib": None}}}
    lines = scale_benchmark.ladder_lines({"10000000": rung(3000.0, 6.5), "1000000": rung(600.0, 5.0)})
    text = "\n".join(lines)
    assert "| component | 1,000,000 rows: s | GiB | 10,000,000 rows: s | GiB |" in text  # smallest first
    assert "| Trainer | 300 | 5.0 | 1500 | 6.5 |" in text and "| Pusher | 1 | - | 1 | - |" in text
    assert "1.30x the peak at 1,000,000 rows" in text and "50 min (target: 60)" in text


def test_the_served_line_gives_scann_over_stock_per_batch_and_the_verdict():
    served = {"scann model batch 1": {"batch": 1, "queries_per_second": 720.0},
              "stock model (brute force) batch 1": {"batch": 1, "queries_per_second": 48.0},
              "scann model batch 256": {"batch": 256, "queries_per_second": 4000.0},
              "stock model (brute force) batch 256": {"batch": 256, "queries_per_second": 125.0}}
    line = scale_benchmark._served_line(served, {"recall": {"scann_recall_at_10": 0.97}})
    assert line.startswith("ScaNN model over the stock model: 15.0x at batch 1, 32.0x at batch 256") and line.endswith(": met")
    assert scale_benchmark._served_line(served, {"recall": {"scann_recall_at_10": 0.90}}).endswith(": not met")  # fast but inexact
    slow = {**served, "scann model batch 1": {"batch": 1, "queries_per_second": 240.0}}
    assert scale_benchmark._served_line(slow, None).endswith(": not met")
