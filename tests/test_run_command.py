"""`influencer-recs run` as a person uses it: exit codes, the summary, the report in a browser, caching, run comparison.

The reruns start from a copy of the session run's metadata store: TFX's cache
key leaves output paths out, so the session run's artifacts are reused and
nothing of the session run's own output folder changes.
"""

import os
import shutil
import subprocess

import pytest

from conftest import TEST_BEAM_ARGS

from cli.main import main
from runs import report
from runs.record import list_runs, run_record

UPSTREAM = ("InteractionExampleGen", "StatisticsGen", "Transform")


def _run(pipeline_run, out, *flags):
    return main(["run", "--data", pipeline_run.data_dir, "--output", str(out), "--max-categories",
                 str(pipeline_run.transform.max_categories), *flags, "--", *TEST_BEAM_ARGS])


@pytest.fixture(scope="module")
def reruns(pipeline_run, tmp_path_factory):
    """Two reruns on the session run's cache: a gate no model can pass, then --epochs 1 with changed code."""
    out = tmp_path_factory.mktemp("reruns")
    shutil.copy(pipeline_run.metadata_path, out / "metadata.sqlite")
    started_in = os.getcwd()
    os.chdir(out.parent)  # a relative --output: what is recorded must not depend on this folder
    try:
        refused = _run(pipeline_run, out.name, "--min-lift-over-popular", "1000")
    finally:
        os.chdir(started_in)
    from pipeline import pipeline as pipeline_module

    real = pipeline_module.code_version
    pipeline_module.code_version = lambda: real() + "-changed"  # what editing models/ does (test_code_version.py)
    try:
        retrained = _run(pipeline_run, out, "--min-lift-over-popular", "1000", "--epochs", "1")
    finally:
        pipeline_module.code_version = real
    return out, refused, retrained


def _states(out, run_id):
    return {c["node"]: c["state"] for c in run_record(str(out / "metadata.sqlite"), "influencer-recs", run_id)["components"]}


def test_a_model_the_gates_refuse_exits_3_and_pushes_nothing(reruns):
    out, refused, retrained = reruns
    assert refused == 3 and retrained == 3
    assert not os.path.exists(out / "serving")
    record = run_record(str(out / "metadata.sqlite"), "influencer-recs", list_runs(str(out / "metadata.sqlite"), "influencer-recs")[1])
    assert not record["pushed"]["pushed"]
    assert any("below 1000 x most-popular" in reason for reason in record["retrieval"]["reasons"])


def test_a_rerun_on_unchanged_data_and_code_reuses_the_upstream_components(reruns):
    out, _, _ = reruns
    session, first, second = list_runs(str(out / "metadata.sqlite"), "influencer-recs")
    states = _states(out, first)
    assert all(states[node] == "cached" for node in (*UPSTREAM, "Trainer")), states
    # Their inputs changed: the session's model is now the last blessed one they compare with, and the threshold moved.
    assert states["Evaluator"] == "complete" and states["RetrievalEvaluator"] == "complete"
    changed = _states(out, second)
    assert all(changed[node] == "complete" for node in (*UPSTREAM, "Trainer")), changed  # the code changed


def test_runs_compare_shows_the_epochs_and_the_metric_deltas(reruns, capsys):
    out, _, _ = reruns
    _, first, second = list_runs(str(out / "metadata.sqlite"), "influencer-recs")
    capsys.readouterr()
    assert main(["runs", "compare", "--output", str(out), first, second]) == 0
    text = capsys.readouterr().out
    assert "Trainer.custom_config.model.epochs: - -> 1" in text
    assert "code_version" in text
    assert "recall@10" in text and "best epoch" in text
    assert main(["runs", "list", "--output", str(out)]) == 0
    header, *listed = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["run", "started"]
    assert len(listed) == 3 and "not pushed" in listed[-1] and "not pushed" not in listed[0]
    assert main(["runs", "compare", "--output", str(out), first[:-3], second]) == 0  # a unique prefix names a run


def test_report_writes_the_summary_of_a_finished_run(pipeline_run, tmp_path, capsys):
    shutil.copy(pipeline_run.metadata_path, tmp_path / "metadata.sqlite")
    assert main(["report", "--output", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "RMSE" in text and "(at most 0.3" in text
    assert "most-popular" in text and "(at least 1.2x)" in text
    assert "\n  PUSHED: " in text
    assert os.path.exists(os.path.join(report.report_dir(str(tmp_path), list_runs(str(tmp_path / "metadata.sqlite"), "influencer-recs")[0]), report.HTML_FILE))


def test_a_run_reads_the_same_from_any_folder_and_its_report_is_never_replaced(reruns, capsys, monkeypatch):
    out, _, _ = reruns
    store = str(out / "metadata.sqlite")
    first = list_runs(store, "influencer-recs")[1]  # the run started with a relative --output
    record = run_record(store, "influencer-recs", first)
    uris = [uri for outputs in record["artifacts"].values() for found in outputs.values() for uri in found]
    assert uris and all(os.path.isabs(uri) and os.path.exists(uri) for uri in uris)
    page = os.path.join(report.report_dir(str(out), first), report.HTML_FILE)
    original = open(page).read()
    monkeypatch.chdir(out / "reports")
    capsys.readouterr()
    assert main(["report", "--output", "..", "--run", first]) == 0
    text = capsys.readouterr().out
    assert "retrieval: recall@10 0." in text and "no metrics recorded" not in text
    assert open(page).read() == original
    assert "regenerated-" in text.splitlines()[-1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_report_renders_its_sections_in_a_real_browser(reruns, tmp_path):
    out, _, _ = reruns
    run_id = list_runs(str(out / "metadata.sqlite"), "influencer-recs")[-1]
    page = os.path.join(report.report_dir(str(out), run_id), report.HTML_FILE)
    assert os.path.exists(page) and os.path.exists(page.replace(report.HTML_FILE, report.MARKDOWN_FILE))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", f"file://{page}"], capture_output=True, text=True, timeout=120).stdout
    for section in report.SECTIONS:
        assert f">{section}</h2>" in dom, section
    assert dom.count("<svg") == 6 and "Not pushed" in dom and "root_mean_squared_error" in dom
    assert "Recall@10 by owner history" in dom and "Recall@10 by influencer popularity" in dom and "last blessed model" in dom
    assert "By owner history bucket (TFMA slice)" in dom and "By influencer popularity bucket (TFMA slice)" in dom
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1150,2000", f"--screenshot={shot}", f"file://{page}"], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def _shoot(svg_path, tmp_path):
    """A screenshot of one chart at its own size."""
    import re

    svg = open(svg_path).read()
    width, height = (int(float(v)) for v in re.search(r"width='([0-9.]+)' height='([0-9.]+)'", svg).groups())
    shot = tmp_path / (os.path.basename(svg_path) + ".png")
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--window-size={width},{height}", f"--screenshot={shot}", f"file://{svg_path}"], capture_output=True, timeout=120)
    return shot


def _coloured_pixels(png, below: int = 45) -> int:
    """Pixels of a saturated colour under the title and legend: bars, lines, histogram buckets; an empty chart has none."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    return sum(1 for r, g, b in image.crop((0, below, *image.size)).getdata() if max(r, g, b) - min(r, g, b) > 60)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_no_chart_of_the_report_is_empty_on_screen(reruns, tmp_path):
    from runs import charts

    empty = tmp_path / "empty.svg"
    empty.write_text(charts.bars({}, ("recall@10",), "Nothing"))
    assert _coloured_pixels(_shoot(str(empty), tmp_path)) < 300  # the check sees an empty chart as empty
    out, _, _ = reruns
    folder = report.report_dir(str(out), list_runs(str(out / "metadata.sqlite"), "influencer-recs")[-1])
    svgs = sorted(name for name in os.listdir(folder) if name.endswith(".svg"))
    assert len(svgs) == 6, svgs
    for name in svgs:
        assert _coloured_pixels(_shoot(os.path.join(folder, name), tmp_path)) >= 300, f"{name} shows nothing on screen"


def test_data_that_drifted_from_the_last_blessed_model_s_stops_the_run_naming_feature_and_distance(pipeline_run, tmp_path, capsys):
    import pandas as pd

    from data import schema

    data, out = tmp_path / "drifted", tmp_path / "out"
    data.mkdir(), out.mkdir()
    influencers = pd.read_csv(os.path.join(pipeline_run.data_dir, schema.INFLUENCER_FILE))
    influencers[schema.PRICE] = influencers[schema.PRICE] ** 0.2  # still in [0, 1], the schema's range: only its distribution moved
    influencers.to_csv(data / schema.INFLUENCER_FILE, index=False)
    shutil.copy(os.path.join(pipeline_run.data_dir, schema.HISTORY_FILE), data / schema.HISTORY_FILE)
    shutil.copy(pipeline_run.metadata_path, out / "metadata.sqlite")  # the session run's blessed model is the baseline
    capsys.readouterr()
    assert _run(pipeline_run, out, "--data", str(data)) == 2
    said = capsys.readouterr()
    text = said.out + said.err
    line = next((line for line in text.splitlines() if f"feature {schema.PRICE}:" in line), text[-3000:])
    assert "last blessed model's data" in line and "Jensen-Shannon divergence" in line and "above the threshold 0.1" in line, line
    assert not (out / "serving").exists()
    assert "Transform" not in _states(out, list_runs(str(out / "metadata.sqlite"), "influencer-recs")[-1])  # stopped before it
