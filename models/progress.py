"""The one channel for progress a person watches: a named Python logger.

Code inside the components (and the jobs they run) reports here; the console
of a local run (pipeline/console.py) shows these records and sends every
other log line to the run's log file. Elsewhere they are ordinary log records.
"""

import logging

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
