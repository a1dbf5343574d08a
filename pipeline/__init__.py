"""Orchestration: the pipeline config, its definition and its runners."""

import models  # noqa: F401  Sets the Keras-2 switch before TensorFlow is imported.
