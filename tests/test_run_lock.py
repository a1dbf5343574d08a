"""One run per output folder: a second one is refused with the holder named, a killed holder never blocks."""

import os
import signal
import subprocess
import sys
import time

import pytest

from cli.main import main
from pipeline.run_lock import LOCK_FILE, OutputBusyError, output_lock

_HOLD = """
import sys, time
sys.path.insert(0, {root!r})
from pipeline.run_lock import output_lock
with output_lock({out!r}):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/out."""
    out = tmp_path / "out"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen([sys.executable, "-c", _HOLD.format(root=root, out=str(out))], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield out, process
    process.kill()
    process.wait()


def test_a_second_run_is_refused_naming_the_holder(holder):
    out, process = holder
    with pytest.raises(OutputBusyError, match=rf"in use by another run \(pid {process.pid} on .*, started 20\d\d-"):
        with output_lock(str(out)):
            pass


def test_a_killed_holder_leaves_no_lock_behind(holder):
    out, process = holder
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert os.path.exists(out / LOCK_FILE)  # the file stays; the lock went with the process
    with output_lock(str(out)):
        pass


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    with output_lock(str(tmp_path)):
        with output_lock(str(tmp_path)):
            pass
        probe = subprocess.run(
            [sys.executable, "-c", f"import fcntl,os; fd=os.open({str(tmp_path / LOCK_FILE)!r}, os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX|fcntl.LOCK_NB)"],
            capture_output=True,
        )
        assert probe.returncode != 0, "the outer block still holds the lock"
    probe = subprocess.run(
        [sys.executable, "-c", f"import fcntl,os; fd=os.open({str(tmp_path / LOCK_FILE)!r}, os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX|fcntl.LOCK_NB)"],
        capture_output=True,
    )
    assert probe.returncode == 0


def test_run_into_a_busy_folder_exits_2_and_writes_nothing(holder, small_data, capsys):
    out, process = holder
    before = sorted(os.listdir(out))
    assert main(["run", "--data", small_data, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"pid {process.pid}" in err and "one output folder holds one run at a time" in err
    assert sorted(os.listdir(out)) == before  # no log, no report, no store
