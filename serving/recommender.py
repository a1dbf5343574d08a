"""Reading a pushed model: `<serving>/<model_name>/<version>/`, as TF Serving does."""

import os
from typing import Dict, List

import numpy as np

from models.filters import (
    EMPTY_ID,
    EXCLUDE_IDS_INPUT,
    K_INPUT,
    MAX_PRICE_INPUT,
    MIN_FOLLOWERS_INPUT,
    PLATFORM_INPUT,
    REQUIRED_CATEGORIES_INPUT,
)
from models.index import SCANN_SUBDIR
from models.serving import IDS_KEY, OWNER_INPUT, SCORE_KEY
from data.errors import UserError
from serving.codec import clean_tf_error
from serving.versions import resolve_version_dir


def neutral_filters(batch: int, k: int) -> Dict[str, "tf.Tensor"]:
    """`recommend_filtered` inputs that filter nothing: only k."""
    import tensorflow as tf

    return {
        K_INPUT: tf.fill([batch], tf.constant(k, tf.int64)),
        MAX_PRICE_INPUT: tf.fill([batch], -1.0),
        PLATFORM_INPUT: tf.fill([batch], ""),
        MIN_FOLLOWERS_INPUT: tf.zeros([batch], tf.int64),
        REQUIRED_CATEGORIES_INPUT: tf.fill([batch], ""),
        EXCLUDE_IDS_INPUT: tf.fill([batch, 1], tf.constant(EMPTY_ID, tf.int64)),
    }


class Recommender:
    """Top-K for owners from a pushed version: ScaNN index or brute force."""

    def __init__(self, model_dir: str, brute_force: bool = False):
        import tensorflow as tf

        self.version_dir = resolve_version_dir(model_dir)
        self.brute_force = brute_force
        self.model = tf.saved_model.load(self.version_dir)
        if brute_force:
            self._recommend = self.model.signatures["recommend_filtered"]
        else:
            import scann  # noqa: F401  Registers the Scann ops the index needs.

            self._recommend = tf.saved_model.load(os.path.join(self.version_dir, SCANN_SUBDIR)).signatures["recommend_filtered"]
        ids = self.model.catalog_ids.numpy()
        self._row = {int(i): n for n, i in enumerate(ids)}

    def recommend(self, owner_ids: List[int], k: int) -> Dict[str, np.ndarray]:
        """Top-k ids and scores per owner (past hires excluded); UserError for a k the model refuses."""
        import tensorflow as tf

        try:
            result = self._recommend(**{OWNER_INPUT: tf.constant(owner_ids, tf.int64)}, **neutral_filters(len(owner_ids), k))
        except tf.errors.InvalidArgumentError as error:
            raise UserError(clean_tf_error(error)) from None
        return {IDS_KEY: result[IDS_KEY].numpy(), SCORE_KEY: result[SCORE_KEY].numpy()}

    def describe(self, influencer_id: int) -> Dict[str, object]:
        """The catalog attributes shown next to a recommendation."""
        row = self._row[int(influencer_id)]
        followers = self.model.catalog_followers.numpy()[row]
        return {
            "categories": self.model.catalog_categories.numpy()[row].decode(),
            "followers": tuple(int(f) for f in followers),
            "price": float(self.model.catalog_price.numpy()[row]),
        }
