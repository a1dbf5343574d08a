"""Signature inputs checked in the graph.

A request outside them is an InvalidArgumentError (a 400 over REST, in TF
Serving and the stand-in alike), never an answer computed from a value the
model was not built for. Checks are stock ops, like the rest of the model.
"""

import tensorflow as tf


def checked(value: tf.Tensor, ok: tf.Tensor, message: str) -> tf.Tensor:
    """`value`, once `ok` holds everywhere (else InvalidArgumentError with `message`)."""
    with tf.control_dependencies([tf.debugging.assert_equal(tf.reduce_all(ok), True, message=message)]):
        return tf.identity(value)


def embedding(value: tf.Tensor, dim: int, name: str) -> tf.Tensor:
    """[batch, dim] finite query embeddings: a wrong width would read past the request."""
    width = tf.shape(value)[1]
    value = checked(value, tf.equal(width, dim), f"{name} must have {dim} values per row (the model's embedding size)")
    return checked(value, tf.math.is_finite(value), f"{name} must be finite numbers")
