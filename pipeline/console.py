"""What a local run shows a person: one line per component and the progress lines; the rest goes to a log file.

TFX, TensorFlow (including its C++ side), Beam and its worker processes all
write to the process's stdout/stderr. Unless verbose, both file descriptors
are pointed at the run's log file for the length of the run, so nothing of
that reaches the console; the console gets TFX's component start/finish
records (as timed lines) and the records of models.progress.
"""

import contextlib
import datetime
import logging
import os
import re
import sys
import time
from typing import IO, Iterator, Optional

from models import progress

_STARTED = "Component %s is running."  # tfx.orchestration.local.local_dag_runner's own records
_FINISHED = "Component %s is finished."
_SKIPPED = "Skipping component %s."
_CACHED = "A cached execution %d is used."  # tfx.orchestration.portable.launcher, between a component's start and finish
# The launcher's record when an input a component needs has no artifact yet (tfx's InsufficientInputError):
# a first run has no blessed run before it to take baseline statistics from. Expected, so not an "error:".
_NO_INPUT_YET = re.compile(r"\[(?P<component>[\w.-]+)\] Input resolution error: .*InputSpec min_count has not met: inputs\[(?P<input>\w+)\]")


class _ConsoleHandler(logging.Handler):
    """Turns the records a person wants into console lines, timed from the start of the run."""

    def __init__(self, stream: IO[str]):
        super().__init__(logging.INFO)
        self._stream = stream
        self._run_started = time.monotonic()
        self._component_started = {}
        self._reused = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self._line(record)
            if line is not None:
                self._stream.write(f"[{progress.duration(time.monotonic() - self._run_started):>7}] {line}\n")
                self._stream.flush()
        except Exception:  # the console must never break the run
            pass

    def _line(self, record: logging.LogRecord) -> Optional[str]:
        if record.name == progress.LOGGER_NAME:
            return record.getMessage()
        if record.msg == _STARTED and record.args:
            self._component_started[record.args[0]] = time.monotonic()
            return f"{record.args[0]} ..."
        if record.msg == _CACHED:
            self._reused.update(self._component_started)  # the component that is running
            return None
        if record.msg == _FINISHED and record.args:
            began = self._component_started.pop(record.args[0], None)
            if record.args[0] in self._reused:
                self._reused.discard(record.args[0])
                return f"{record.args[0]} reused (unchanged data, code and settings)"
            took = "" if began is None else f" in {progress.duration(time.monotonic() - began)}"
            return f"{record.args[0]} done{took}"
        if record.msg == _SKIPPED and record.args:
            return f"{record.args[0]} skipped"
        if record.levelno >= logging.ERROR:
            first = record.getMessage().splitlines()[0]
            waiting = _NO_INPUT_YET.match(first)
            if waiting:
                return f"{waiting['component']}: no {waiting['input']} yet (none from an earlier blessed run), so it checks nothing this time"
            return f"error: {first}"
        return None


def _prints_to_terminal(handler: logging.Handler, streams) -> bool:
    """absl's handler (it writes to sys.stderr) and stream handlers on stdout/stderr."""
    if type(handler).__name__ == "ABSLHandler":
        return True
    return isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (*streams, sys.__stdout__, sys.__stderr__)


def log_path(output_dir: str) -> str:
    """Where this run's full log goes: <output>/logs/run-<UTC time>.log."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return os.path.join(output_dir, "logs", f"run-{stamp}.log")


@contextlib.contextmanager
def run_console(log_file: str, verbose: bool = False, stream: Optional[IO[str]] = None) -> Iterator[IO[str]]:
    """For the length of the block: the full logs go to `log_file` (and, when verbose, the console too).

    Yields the console stream to print the run's own lines to.
    """
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    console = stream or sys.stderr
    saved = None
    python_streams = (sys.stdout, sys.stderr)
    log = open(log_file, "a", buffering=1)
    if not verbose:
        saved = (os.dup(1), os.dup(2))
        console = stream or os.fdopen(os.dup(saved[1]), "w", buffering=1)
        os.dup2(log.fileno(), 1)  # C++ code and child processes (Beam workers) write to the descriptors
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log  # Python code writes to these objects, which need not be the descriptors
    from absl import logging as absl_logging

    verbosity = absl_logging.get_verbosity()
    root = logging.getLogger()
    handler = _ConsoleHandler(console)
    file_handler = logging.StreamHandler(log)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Unless verbose, the handlers that print to the terminal step aside for the run: the file handler has their records.
    hidden = [] if verbose else [h for h in root.handlers if _prints_to_terminal(h, python_streams)]
    for old in hidden:
        root.removeHandler(old)
    root.addHandler(handler)
    root.addHandler(file_handler)
    progress_logger = logging.getLogger(progress.LOGGER_NAME)
    previous_level = progress_logger.level
    progress_logger.setLevel(logging.INFO)
    try:
        yield console
    finally:
        root.removeHandler(handler)
        root.removeHandler(file_handler)
        for old in hidden:
            root.addHandler(old)
        progress_logger.setLevel(previous_level)
        absl_logging.set_verbosity(verbosity)  # the runner raised it to INFO; what follows the run stays quiet
        sys.stdout.flush()
        sys.stderr.flush()
        if saved is not None:
            sys.stdout, sys.stderr = python_streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if stream is None:
                console.close()
        log.close()
