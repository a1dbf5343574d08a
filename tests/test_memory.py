"""release_memory hands freed heap pages back to the system, so the next component does not carry them."""

import gc

import numpy as np
import psutil
import tensorflow as tf  # noqa: F401  (loaded before measuring: release_memory uses it)

from models.memory import release_memory


def test_freed_arrays_leave_the_process_resident_set():
    process = psutil.Process()
    before = process.memory_info().rss
    np.ones(100_000)  # a freed mmapped block raises glibc's mmap threshold: the arrays below then live in the heap
    chunks, pins = [], []
    for _ in range(4_000):  # 3.2 GB in 800 kB blocks, each followed by a small live one, as a long run leaves its heap
        chunks.append(np.ones(100_000))
        pins.append(bytearray(2_000))
    del chunks
    gc.collect()
    assert process.memory_info().rss - before > 2**30  # freed, but still resident: what a later component would carry
    release_memory()
    assert process.memory_info().rss - before < 2**28
