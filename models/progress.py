"""The one channel for progress a person watches: a named Python logger.

Code inside the components (and the jobs they run) reports here; the console
of a local run (pipeline/console.py) shows these records and sends every
other log line to the run's log file. Elsewhere they are ordinary log records.
"""

import contextlib
import logging
import time
from typing import Callable, Dict, Iterator, TypeVar

T = TypeVar("T")

LOGGER_NAME = "influencer_recs.progress"
_logger = logging.getLogger(LOGGER_NAME)


def report(message: str, *args) -> None:
    """One progress line (printf-style args, as logging takes them)."""
    _logger.info(message, *args)


def duration(seconds: float) -> str:
    """12 s, 3m 05s, 1h 02m: how long, the way a person reads it."""
    seconds = int(round(max(seconds, 0.0)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class Steps:
    """Wall time of each named step (a step run twice adds up), for a report."""

    def __init__(self):
        self.seconds: Dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            return fn()
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started

    def rounded(self) -> Dict[str, float]:
        """Seconds per step to a tenth, in the order the steps first ran."""
        return {name: round(seconds, 1) for name, seconds in self.seconds.items()}


class _Forward(logging.Handler):
    def __init__(self, write: Callable[[str], None]):
        super().__init__(logging.INFO)
        self._write = write

    def emit(self, record: logging.LogRecord) -> None:
        self._write(record.getMessage())


@contextlib.contextmanager
def shown(write: Callable[[str], None]) -> Iterator[None]:
    """Inside: every progress line also goes to `write` (a command's console, outside a pipeline run)."""
    handler = _Forward(write)
    level, propagate = _logger.level, _logger.propagate
    _logger.addHandler(handler)
    _logger.propagate = False  # not also printed by a root handler some library installed
    if _logger.getEffectiveLevel() > logging.INFO:
        _logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        _logger.removeHandler(handler)
        _logger.setLevel(level)
        _logger.propagate = propagate
