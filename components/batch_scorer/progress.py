"""What batch scoring shows while it runs: owners done of the owners read, the rate and the time left.

Beam's metrics reach the driver only when a job ends (the multi-processing
DirectRunner's workers, most runners), so the job's own steps write running
counts into small files under the job's staging folder (FileSystems: a local
path or gs://), one file per step instance, and the driver sums them every few
seconds. The folder is deleted before the output is published.
"""

import contextlib
import threading
import time
import uuid
from typing import Callable, Dict, Iterator, Optional

from apache_beam.io.filesystems import FileSystems

from models import progress

PROGRESS_DIR = ".progress"
READ, READ_DONE, DONE = "read", "read_done", "done"  # owners read so far; owner files read to the end; owners scored or dead-lettered
WRITE_EVERY_S = 2.0
SHOW_EVERY_S = 10.0


class CountFile:
    """One step instance's running count of one kind, rewritten at most every WRITE_EVERY_S (and by flush)."""

    def __init__(self, folder: Optional[str], kind: str):
        self._path = folder and f"{folder.rstrip('/')}/{kind}-{uuid.uuid4().hex}"
        self.count, self._written = 0, None  # the first add always writes (monotonic time may start near 0 at boot)

    def add(self, n: int) -> None:
        self.count += n
        if self._written is None or time.monotonic() - self._written >= WRITE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if not self._path:
            return
        try:
            with FileSystems.create(self._path) as handle:
                handle.write(str(self.count).encode())
        except Exception:  # progress is for the eyes only: it never fails the job
            return
        self._written = time.monotonic()


def totals(folder: str) -> Dict[str, int]:
    """Every kind's count summed over the step instances that wrote one so far."""
    counts = {READ: 0, READ_DONE: 0, DONE: 0}
    try:
        found = FileSystems.match([f"{folder.rstrip('/')}/*"])[0].metadata_list
    except Exception:  # nothing written yet
        return counts
    for meta in found:
        kind = meta.path.rstrip("/").rsplit("/", 1)[-1].rsplit("-", 1)[0]
        try:
            with FileSystems.open(meta.path) as handle:
                counts[kind] = counts.get(kind, 0) + int(handle.read().decode() or 0)
        except Exception:  # being rewritten this moment: counted next time
            continue
    return counts


def progress_line(counts: Dict[str, int], owner_files: int, elapsed: float, scoring_elapsed: Optional[float]) -> str:
    """One line a person reads: what is done of what, the rate, and the time left once the total is known."""
    if not counts[DONE]:
        state = "read to the end" if counts[READ_DONE] >= owner_files else "reading"
        return f"batch-score: {counts[READ]:,} owners read ({state}), none scored yet, {progress.duration(elapsed)} in"
    total = counts[READ] if counts[READ_DONE] >= owner_files else None
    rate = counts[DONE] / scoring_elapsed if scoring_elapsed else 0.0
    line = f"batch-score: {counts[DONE]:,}" + (f" / {total:,}" if total else "") + f" owners scored, {rate:,.0f}/s"
    if total and total > counts[DONE] and rate > 0:
        line += f", about {progress.duration((total - counts[DONE]) / rate)} to go"
    return line


@contextlib.contextmanager
def watching(folder: str, owner_files: int = 1, show: Callable[[str], None] = progress.report, every: Optional[float] = None) -> Iterator[None]:
    """While inside: a line every `every` seconds (SHOW_EVERY_S) from the counts the job's steps write under
    `folder`, and a last one when the block ends, so a job shorter than `every` still shows what it did."""
    every = SHOW_EVERY_S if every is None else every
    stop = threading.Event()
    started = time.monotonic()

    def loop() -> None:
        scoring_from, last = None, None
        while True:
            ending = stop.wait(every)
            counts = totals(folder)
            if counts[DONE] and scoring_from is None:
                # The first scores landed within the last interval (or, at the end, at some point of the job).
                scoring_from = started if ending else time.monotonic() - every
            line = progress_line(counts, owner_files, time.monotonic() - started, None if scoring_from is None else time.monotonic() - scoring_from)
            if line != last:
                show(line)
                last = line
            if ending:
                return

    thread = threading.Thread(target=loop, name="batch-score-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
