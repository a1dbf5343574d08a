"""The valid range of every numeric signature input, checked in the graph.

A request outside them is an InvalidArgumentError (a 400 over REST, in TF
Serving and the stand-in alike), never an answer computed from a value the
model was not built for. Checks are stock ops, like the rest of the model.
"""

import tensorflow as tf

from data import schema

PRICE_LO, PRICE_HI = schema.UNIT_INTERVAL  # budget and max_price are price_normalized values


def checked(value: tf.Tensor, ok: tf.Tensor, message: str) -> tf.Tensor:
    """`value`, once `ok` holds everywhere (else InvalidArgumentError with `message`)."""
    with tf.control_dependencies([tf.debugging.assert_equal(tf.reduce_all(ok), True, message=message)]):
        return tf.identity(value)


def checked_naming(value: tf.Tensor, ok: tf.Tensor, message_fn) -> tf.Tensor:
    """`checked` whose message names the offending values: `message_fn()` builds it only when the check fails."""
    def fail():
        with tf.control_dependencies([tf.debugging.Assert(False, [message_fn()])]):
            return tf.identity(value)

    return tf.cond(tf.reduce_all(ok), lambda: tf.identity(value), fail)


def non_negative(value: tf.Tensor, name: str) -> tf.Tensor:
    """Ids and follower counts: 0 or more (-1 is the 'no id' sentinel, never a key)."""
    return checked(value, value >= 0, f"{name} must be a non-negative integer")


def price(value: tf.Tensor, name: str) -> tf.Tensor:
    """A price_normalized value in [0, 1]; NaN and inf fail the comparison."""
    return checked(value, (value >= PRICE_LO) & (value <= PRICE_HI), f"{name} must be a number from {PRICE_LO:g} to {PRICE_HI:g} (price_normalized)")


def price_cap(value: tf.Tensor, name: str) -> tf.Tensor:
    """A cap in [0, 1], or any finite negative number for no cap."""
    ok = ((value >= PRICE_LO) & (value <= PRICE_HI)) | ((value < 0) & tf.math.is_finite(value))
    return checked(value, ok, f"{name} must be a number from {PRICE_LO:g} to {PRICE_HI:g} (price_normalized), or negative for no cap")


def embedding(value: tf.Tensor, dim: int, name: str) -> tf.Tensor:
    """[batch, dim] finite query embeddings: a wrong width would read past the request."""
    width = tf.shape(value)[1]
    value = checked(value, tf.equal(width, dim), f"{name} must have {dim} values per row (the model's embedding size)")
    return checked(value, tf.math.is_finite(value), f"{name} must be finite numbers")
