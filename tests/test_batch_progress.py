"""Batch scoring's running counts: files per step instance, summed by the driver into one line a person reads."""

import time

from components.batch_scorer import progress
from components.batch_scorer.progress import DONE, READ, READ_DONE, CountFile, progress_line, totals, watching


def test_counts_of_every_step_instance_are_summed_by_kind(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "WRITE_EVERY_S", 3600.0)
    folder = str(tmp_path / "progress")
    assert totals(folder) == {READ: 0, READ_DONE: 0, DONE: 0}  # nothing written yet
    first, second = CountFile(folder, DONE), CountFile(folder, DONE)
    first.add(5)  # written: the first add of an instance
    second.add(7)
    second.add(3)  # held back until the next flush (rewrites are rate-limited)
    assert totals(folder)[DONE] == 12
    second.flush()
    CountFile(folder, READ).add(20)
    assert totals(folder) == {READ: 20, READ_DONE: 0, DONE: 15}


def test_a_count_file_without_a_folder_writes_nothing(tmp_path):
    counter = CountFile(None, DONE)
    counter.add(3)
    counter.flush()
    assert counter.count == 3 and list(tmp_path.iterdir()) == []


def test_the_line_says_what_is_known():
    assert progress_line({READ: 1200, READ_DONE: 0, DONE: 0}, 1, 12.0, None) == "batch-score: 1,200 owners read (reading), none scored yet, 12 s in"
    assert progress_line({READ: 5000, READ_DONE: 1, DONE: 0}, 1, 30.0, None).startswith("batch-score: 5,000 owners read (read to the end)")
    assert progress_line({READ: 5000, READ_DONE: 1, DONE: 1000}, 1, 40.0, 10.0) == "batch-score: 1,000 / 5,000 owners scored, 100/s, about 40 s to go"
    # Until every owner file is read to the end the total is unknown: no total, no time left.
    assert progress_line({READ: 900, READ_DONE: 1, DONE: 100}, 2, 40.0, 10.0) == "batch-score: 100 owners scored, 10/s"


def _job_counts(folder: str, read: int, done: int) -> None:
    """What a job's steps write: `read` owners read from its one owner file, read to the end, `done` scored."""
    CountFile(folder, READ).add(read)
    CountFile(folder, READ_DONE).add(1)
    CountFile(folder, DONE).add(done)


def test_watching_shows_lines_while_the_job_runs_and_stops_with_it(tmp_path):
    folder, lines = str(tmp_path / "progress"), []
    with watching(folder, show=lines.append, every=0.05):
        _job_counts(folder, read=10, done=4)
        time.sleep(0.5)
    shown = len(lines)
    time.sleep(0.2)
    assert len(lines) == shown  # the thread stopped with the block
    assert any("4 / 10 owners scored" in line for line in lines), lines


def test_a_job_shorter_than_the_interval_still_shows_what_it_scored(tmp_path):
    folder, lines = str(tmp_path / "progress"), []
    with watching(folder, show=lines.append, every=3600.0):
        _job_counts(folder, read=10, done=10)
    assert len(lines) == 1 and lines[0].startswith("batch-score: 10 / 10 owners scored") and "to go" not in lines[0], lines
