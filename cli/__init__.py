"""The `influencer-recs` command: on top of every other package; nothing imports it."""

import models  # noqa: F401  Sets the Keras-2 switch before TensorFlow is imported.
