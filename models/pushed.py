"""Reading a pushed model: `<serving>/<model_name>/<version>/`, as TF Serving does."""

import os
from typing import Dict, List

import numpy as np

from models.index import SCANN_SUBDIR
from models.serving import IDS_KEY, OWNER_INPUT, SCORE_KEY


def resolve_version_dir(path: str) -> str:
    """`path` itself if it is a SavedModel, else its newest numeric version."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
    if not versions:
        raise FileNotFoundError(f"{path}: no SavedModel and no numeric version folder (expected <model_base>/<version>/saved_model.pb)")
    return os.path.join(path, max(versions, key=int))


class Recommender:
    """Top-K for owners from a pushed version: ScaNN index or brute force."""

    def __init__(self, model_dir: str, brute_force: bool = False):
        import tensorflow as tf

        self.version_dir = resolve_version_dir(model_dir)
        self.brute_force = brute_force
        self.model = tf.saved_model.load(self.version_dir)
        if brute_force:
            self._recommend = self.model.signatures["recommend"]
        else:
            import scann  # noqa: F401  Registers the Scann ops the index needs.

            self._recommend = tf.saved_model.load(os.path.join(self.version_dir, SCANN_SUBDIR)).signatures["recommend"]
        ids = self.model.catalog_ids.numpy()
        self._row = {int(i): n for n, i in enumerate(ids)}

    def recommend(self, owner_ids: List[int], k: int) -> Dict[str, np.ndarray]:
        import tensorflow as tf

        result = self._recommend(**{OWNER_INPUT: tf.constant(owner_ids, tf.int64)})
        available = result[IDS_KEY].shape[1]
        if not 1 <= k <= available:
            raise ValueError(f"k must be between 1 and {available} (the model's top-K), got {k}")
        return {IDS_KEY: result[IDS_KEY].numpy()[:, :k], SCORE_KEY: result[SCORE_KEY].numpy()[:, :k]}

    def describe(self, influencer_id: int) -> Dict[str, object]:
        """The catalog attributes shown next to a recommendation."""
        row = self._row[int(influencer_id)]
        followers = self.model.catalog_followers.numpy()[row]
        return {
            "categories": self.model.catalog_categories.numpy()[row].decode(),
            "followers": tuple(int(f) for f in followers),
            "price": float(self.model.catalog_price.numpy()[row]),
        }
