"""Code that runs inside Transform, Trainer and the exported SavedModel.

TensorFlow Recommenders needs Keras 2, and TensorFlow picks its Keras when it
is first imported, so the switch is set here, once: every package that loads
TensorFlow (components, serving, pipeline, benchmarks, cli) imports `models`
in its own __init__ before anything else.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
