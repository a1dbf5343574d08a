"""The scale benchmark's measuring code path, at the test sample's size (numbers are not checked for speed)."""

import json
import os

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
    assert json.load(open(os.path.join(out, scale_benchmark.REPORT_FILE)))["index"] == json.loads(json.dumps(index))

    text = markdown.read_text()
    assert "## Other section\n\nkept as is" in text
    assert text.count(scale_benchmark.HEADING) == 1
    assert "recall@10 against exact top-10" in text and "owners read/s" in text
    scale_benchmark.write_markdown(report, str(markdown))  # a rerun replaces the section, never duplicates it
    assert markdown.read_text().count(scale_benchmark.HEADING) == 1
