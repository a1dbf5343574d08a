"""Serving a pushed model: the versions of a model base, in-process loading, and the TF Serving REST stand-in."""

import models  # noqa: F401  Sets the Keras-2 switch before TensorFlow is imported.
