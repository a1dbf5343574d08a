"""release_memory hands freed heap pages back to the system, so the next component does not carry them.

Measured in a fresh interpreter: a long test session's heap (its mmap threshold, its free lists) would decide
where the blocks below land.
"""

import json
import os
import subprocess
import sys

CHILD = """
import gc, json
import numpy as np, psutil
import tensorflow as tf  # loaded before measuring: release_memory uses it
from models.memory import release_memory

process = psutil.Process()
before = process.memory_info().rss
np.ones(100_000)  # a freed mmapped block raises glibc's mmap threshold: the arrays below then live in the heap
chunks, pins = [], []
for _ in range(4_000):  # 3.2 GB in 800 kB blocks, each followed by a small live one, as a long run leaves its heap
    chunks.append(np.ones(100_000))
    pins.append(bytearray(2_000))
del chunks
gc.collect()
freed = process.memory_info().rss - before
release_memory()
print(json.dumps({"freed_but_resident": freed, "after_release": process.memory_info().rss - before}))
"""


def test_freed_arrays_leave_the_process_resident_set():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=root, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"})
    sizes = json.loads(out.stdout.strip().splitlines()[-1])
    assert sizes["freed_but_resident"] > 2**30  # freed, but still resident: what a later component would carry
    assert sizes["after_release"] < 2**28
