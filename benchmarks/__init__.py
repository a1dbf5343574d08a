"""Benchmarks: quality on real data, scale, and REST serving latency, sharing one report helper."""

import models  # noqa: F401  Sets the Keras-2 switch before TensorFlow is imported.
