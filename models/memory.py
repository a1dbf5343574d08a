"""Handing a finished step's memory back to the system.

LocalDagRunner runs every component in one process, so what the Trainer
freed stays in glibc's heap and counts against every later component
(the evaluators' Beam workers load the model on top of it). Python's
collector frees the objects; `malloc_trim` returns the freed pages.
"""

import ctypes
import ctypes.util
import gc


def release_memory() -> None:
    """At a component's end: drops Keras' global graph state, then `trim_heap`."""
    import tensorflow as tf

    gc.collect()
    tf.keras.backend.clear_session()
    trim_heap()


def trim_heap() -> None:
    """Collects garbage and returns free heap pages to the system (glibc only); safe while models are in use."""
    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to hand back this way
        return
    trim(0)
