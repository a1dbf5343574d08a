"""One run at a time per output folder.

Two runs into one output folder share its metadata store, its log and report
folders and its serving base; each would read the other's results as its own.
So a run holds an exclusive lock on `<output>/.run.lock` for its whole length,
and a second run is refused (exit 2) with the holder's pid and start time.
The lock is flock(2) on an open file: the kernel drops it when its process
ends, however it ends (kill -9 included), so a stale lock file never blocks.
Within one process the lock is re-entrant (the CLI holds it around the run
and its summary; the runner takes it again). flock needs a local file system.
"""

import contextlib
import datetime
import fcntl
import json
import os
import threading
from typing import Dict, Iterator, List

from data.errors import UserError

LOCK_FILE = ".run.lock"
_held: Dict[str, List[int]] = {}  # lock path -> [its descriptor, depth], in this process
_guard = threading.Lock()


class OutputBusyError(UserError):
    """Another run holds the output folder."""


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError):
        return "a process that has not written its details yet"


@contextlib.contextmanager
def output_lock(output_dir: str) -> Iterator[None]:
    """Holds the output folder's run lock for the block; OutputBusyError if another process holds it."""
    if "://" in output_dir:  # a bucket: the orchestrator (Kubeflow, Vertex) runs one pipeline run per root
        yield
        return
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.realpath(os.path.join(output_dir, LOCK_FILE))
    with _guard:
        if path in _held:
            _held[path][1] += 1
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise OutputBusyError(
                    f"{output_dir} is in use by another run ({holder}); one output folder holds one run at a time: "
                    "wait for it to end, or give another --output"
                ) from None
            details = {"pid": os.getpid(), "host": os.uname().nodename,
                       "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(details).encode("utf-8"), 0)
            _held[path] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            _held[path][1] -= 1
            if _held[path][1] == 0:
                os.close(_held.pop(path)[0])  # closing the file releases the lock; the file stays (removing it would race a waiter)
