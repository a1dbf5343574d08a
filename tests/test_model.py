"""Pieces of the two-tower model that decide what it learns."""

import numpy as np
import tensorflow as tf

from models.model import negatives_mask


def test_past_hires_are_not_negatives():
    # Query 0's owner also hired 7 and 9; query 1's owner hired 5; query 2 none.
    history = tf.ragged.constant([[7, 9], [5], []], dtype=tf.int64).to_sparse()
    candidates = tf.constant([5, 7, 9, 7], tf.int64)
    mask = negatives_mask(history, candidates).numpy()
    np.testing.assert_array_equal(
        mask,
        [[True, False, False, False], [False, True, True, True], [True, True, True, True]],
    )
