"""A local run's console: the lines a person reads; everything else goes to the log file."""

import io
import logging
import subprocess
import sys

from absl import logging as absl_logging

from models import progress
from pipeline import console


def test_console_shows_components_and_progress_and_the_log_gets_everything(tmp_path):
    log = tmp_path / "logs" / "run.log"
    screen = io.StringIO()
    before = absl_logging.get_verbosity()
    with console.run_console(str(log), stream=screen):
        absl_logging.set_verbosity(absl_logging.INFO)  # as the runner does
        absl_logging.info("Component %s is running.", "Trainer")
        absl_logging.info("Using deployment config:\n %s", "executor_specs { ... }")  # TFX's protobuf dumps
        progress.report("Trainer: epoch %d/%d", 1, 3)
        print("a Keras epoch line")
        sys.stdout.flush()
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('a C++ or Beam worker line\\n')"], check=True)
        absl_logging.info("Component %s is finished.", "Trainer")
    lines = screen.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["Trainer ...", "Trainer: epoch 1/3", "Trainer done in 0 s"]
    assert all(line.startswith("[") for line in lines)
    written = log.read_text()
    for text in ("a Keras epoch line", "a C++ or Beam worker line", "Using deployment config"):
        assert text in written
    assert absl_logging.get_verbosity() == before  # what follows the run is as quiet as before it


def test_errors_reach_the_console_and_nothing_is_left_redirected(tmp_path):
    screen = io.StringIO()
    with console.run_console(str(tmp_path / "run.log"), stream=screen):
        logging.getLogger("tfx").error("Execution 7 failed.\nTraceback ...")
    assert "error: Execution 7 failed." in screen.getvalue()
    assert "Traceback" not in screen.getvalue()
    print("after the run")  # fd 1 is the terminal (pytest's capture) again, not the log
    assert "after the run" not in (tmp_path / "run.log").read_text()


def test_a_first_run_without_a_baseline_reads_as_expected_not_as_an_error(tmp_path):
    screen = io.StringIO()
    with console.run_console(str(tmp_path / "run.log"), stream=screen):
        try:
            raise RuntimeError("Error while resolving inputs for DistributionValidator: InputSpec min_count has not met: "
                               "inputs[baseline_statistics] has min_count = 1 but only got 0 artifacts. (Artifact IDs: [])")
        except RuntimeError as error:  # how tfx's launcher logs it
            logging.getLogger("tfx").exception("[%s] Input resolution error: %s", "DistributionValidator", error)
    lines = [line.split("] ", 1)[1] for line in screen.getvalue().splitlines()]
    assert lines == ["DistributionValidator: no baseline_statistics yet (none from an earlier blessed run), so it checks nothing this time"]


def test_durations_read_like_a_person_writes_them():
    assert [progress.duration(s) for s in (0.4, 59, 61, 3599, 3720)] == ["0 s", "59 s", "1m 01s", "59m 59s", "1h 02m"]


def test_a_cached_component_says_reused_not_done_in_0_s(tmp_path):
    screen = io.StringIO()
    with console.run_console(str(tmp_path / "run.log"), stream=screen):
        absl_logging.set_verbosity(absl_logging.INFO)
        absl_logging.info("Component %s is running.", "Transform")
        absl_logging.info("A cached execution %d is used.", 12)
        absl_logging.info("Component %s is finished.", "Transform")
        absl_logging.info("Component %s is running.", "Trainer")
        absl_logging.info("Component %s is finished.", "Trainer")
    lines = [line.split("] ", 1)[1] for line in screen.getvalue().splitlines()]
    assert lines == ["Transform ...", "Transform reused (unchanged data, code and settings)", "Trainer ...", "Trainer done in 0 s"]
