"""ExampleGen's split is a hash of each example's bytes, so those bytes must not depend on the process."""

import subprocess
import sys

SCRIPT = """
import sys
from data import records
from components.interaction_example_gen import catalog_example, interaction_example
influencer = records.Influencer(7, 1000, 20, 3, 0.5, ("Action", "Drama"))
row = records.Interaction(3, 7, 4, 0.25)
sys.stdout.write((interaction_example(row, influencer) + catalog_example(influencer)).hex())
"""


def _bytes(seed: str) -> str:
    env = {"PYTHONHASHSEED": seed, "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, env=env, cwd=sys.path[0] or ".").stdout


def test_the_same_row_serializes_to_the_same_bytes_in_every_process():
    first = _bytes("1")
    assert first and all(_bytes(seed) == first for seed in ("2", "12345"))
