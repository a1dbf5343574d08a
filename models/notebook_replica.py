"""A faithful replica of the seed notebook's model, for the benchmark.

Two towers (Dense 256 relu, 128 relu, 128 linear), each L2-normalised; their
dot product is the predicted combined rating; MSE, Adam 1e-5, batch 128. Its
inputs are the notebook's: the owner profile (from train rows only, the one
fix applied) and the influencer features. No retrieval task.
"""

import numpy as np
import tensorflow as tf

VECTOR_SIZE = 128
LEARNING_RATE = 1e-5
BATCH_SIZE = 128


def _tower(name: str) -> tf.keras.Sequential:
    return tf.keras.Sequential(
        [
            tf.keras.layers.Dense(256, activation="relu"),
            tf.keras.layers.Dense(128, activation="relu"),
            tf.keras.layers.Dense(VECTOR_SIZE, activation="linear"),
            tf.keras.layers.Lambda(lambda v: tf.math.l2_normalize(v, axis=1)),
        ],
        name=name,
    )


class NotebookModel:
    def __init__(self, feature_dim: int, seed: int = 0):
        tf.keras.utils.set_random_seed(seed)
        self.owner_tower = _tower("owner")
        self.influencer_tower = _tower("influencer")
        owner_in = tf.keras.Input((feature_dim,), name="own_feature")
        influencer_in = tf.keras.Input((feature_dim,), name="inf_feature")
        rating = tf.keras.layers.Dot(axes=1)([self.influencer_tower(influencer_in), self.owner_tower(owner_in)])
        self.model = tf.keras.Model([influencer_in, owner_in], rating)
        self.model.compile(optimizer=tf.keras.optimizers.Adam(LEARNING_RATE), loss="mse", metrics=["mae"])

    def fit(self, owner_profiles: np.ndarray, influencer_features: np.ndarray, labels: np.ndarray, epochs: int) -> None:
        self.model.fit(
            {"inf_feature": influencer_features, "own_feature": owner_profiles},
            labels,
            batch_size=BATCH_SIZE,
            epochs=epochs,
            shuffle=True,
            verbose=2,
        )

    def embed_owners(self, profiles: np.ndarray) -> np.ndarray:
        return self.owner_tower.predict(profiles, batch_size=8192, verbose=0)

    def embed_influencers(self, item_features: np.ndarray) -> np.ndarray:
        return self.influencer_tower.predict(item_features, batch_size=8192, verbose=0)
