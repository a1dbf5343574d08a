"""`runs list` and `runs compare` on run records: headers, integers as integers, id prefixes, data changes."""

import pytest

from runs.compare import comparison_lines, resolve_run, runs_table


def _record(run_id, recall, epochs, best_epoch, pushed=True, data="/data/a", fingerprint="f1", seconds=65.0):
    return {
        "run_id": run_id,
        "started": 1_796_000_000.0,
        "seconds": seconds,
        "components": [{"node": "Trainer", "state": "complete", "seconds": 40.0}, {"node": "Transform", "state": "cached", "seconds": 0.0}],
        "settings": {"InteractionExampleGen": {"input_base": data, "input_fingerprint": fingerprint}, "Trainer": {"custom_config": {"model": {"epochs": epochs}}}},
        "retrieval": {"model": {"recall@10": recall}, "most_popular": {"recall@10": 0.1}},
        "rating": {"root_mean_squared_error": 0.12},
        "training": {"best_epoch": best_epoch, "max_epochs": 10},
        "index": {},
        "pushed": {"pushed": pushed},
        "data": {"history_rows": 24_000},
    }


def test_runs_list_has_a_header_duration_rows_verdict_and_metric():
    lines = runs_table([_record("2026-12-01T10:00:00.1", 0.31, 5, 3), _record("2026-12-01T11:00:00.2", 0.30, 5, 3, pushed=False)])
    assert lines[0].split()[:4] == ["run", "started", "took", "history"]
    assert "1m 05s" in lines[1] and "24,000" in lines[1] and "pushed" in lines[1] and "0.3100" in lines[1] and "3.10x" in lines[1]
    assert "not pushed" in lines[2] and "(1 reused)" in lines[2]


def test_compare_shows_data_and_settings_changes_and_integers_as_integers():
    a = _record("A1", 0.31, 5, 3)
    b = _record("B2", 0.30, 8, 4, data="/data/b", fingerprint="f2")
    text = "\n".join(comparison_lines(a, b))
    assert "InteractionExampleGen.input_base: /data/a -> /data/b" in text
    assert "InteractionExampleGen.input_fingerprint: f1 -> f2" in text
    assert "Trainer.custom_config.model.epochs: 5 -> 8" in text
    best = next(line for line in text.splitlines() if "best epoch" in line)
    assert best.split()[-3:] == ["3", "4", "+1"]  # not 3.0000 / +1.0000
    assert "-0.0100" in next(line for line in text.splitlines() if line.strip().startswith("recall@10"))


def test_a_unique_prefix_names_a_run():
    ids = ["2026-12-01T10:00:00.1", "2026-12-01T11:00:00.2", "2026-12-02T09:00:00.3"]
    assert resolve_run(ids, "2026-12-02") == ids[2]
    assert resolve_run(ids, ids[0]) == ids[0]
    with pytest.raises(LookupError, match="ambiguous"):
        resolve_run(ids, "2026-12-01")
    with pytest.raises(LookupError, match="no run 'x'"):
        resolve_run(ids, "x")
