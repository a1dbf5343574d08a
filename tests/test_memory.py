"""release_memory hands freed heap pages back to the system, so the next component does not carry them.

Measured in a fresh interpreter whose glibc is told, through its documented tunables, to keep 800 kB blocks in
the heap and never trim it by itself: that is the state a long run leaves, where glibc has raised its mmap
threshold. Left to glibc's heuristics the blocks land wherever the machine's history puts them, and the test
would measure that instead.
"""

import json
import os
import subprocess
import sys

import pytest

CHILD = """
import gc, json
import numpy as np, psutil
import tensorflow as tf  # loaded before measuring: release_memory uses it
from models.memory import release_memory

process = psutil.Process()
before = process.memory_info().rss
chunks, pins = [], []
for _ in range(2_000):  # 1.6 GB in 800 kB blocks, each followed by a small live one, as a long run leaves its heap
    chunks.append(np.ones(100_000))
    pins.append(bytearray(2_000))
del chunks
gc.collect()
freed = process.memory_info().rss - before
release_memory()
print(json.dumps({"freed_but_resident": freed, "after_release": process.memory_info().rss - before}))
"""


# glibc's mallopt tunables (malloc(3)): blocks under 32 MiB come from the heap, and free() never trims it
HEAP_KEEPS_FREED_BLOCKS = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**62)}


def test_freed_arrays_leave_the_process_resident_set():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=root, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3", **HEAP_KEEPS_FREED_BLOCKS})
    sizes = json.loads(out.stdout.strip().splitlines()[-1])
    if sizes["freed_but_resident"] < 2**30:  # e.g. another allocator preloaded: nothing left for release_memory
        pytest.skip(f"this process's allocator returned the freed blocks itself ({sizes})")
    assert sizes["after_release"] < 2**27
