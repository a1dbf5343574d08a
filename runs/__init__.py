"""What runs produced, read from ML Metadata: artifacts, the run summary, the run report, and comparisons."""

import models  # noqa: F401  Sets the Keras-2 switch before TensorFlow is imported.
