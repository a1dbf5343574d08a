"""The `influencer-recs` command: on top of every other package; nothing imports it.

Before anything loads TensorFlow: its C++ start-up chatter and the
third-party FutureWarnings about Python 3.10 (which a user cannot act on)
are silenced here, for this process and the Beam workers it starts.
"""

import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # errors too: ops raise them as Python exceptions anyway
os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
warnings.filterwarnings("ignore", category=FutureWarning)

import models  # noqa: E402,F401  Sets the Keras-2 switch before TensorFlow is imported.
