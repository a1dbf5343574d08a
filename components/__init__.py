"""The custom TFX components, each a component beside its executor."""

import models  # noqa: F401  Sets the Keras-2 switch before TensorFlow is imported.
