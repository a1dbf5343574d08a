"""Transform's `preprocessing_fn`: the notebook's pandas preprocessing in tf.Transform.

Small pure functions, one per feature family, composed by `preprocessing_fn`.
Analyzers (min/max, vocabulary, owner profiles) see the train split only,
because the pipeline's Transform analyzes `train` and only transforms `eval`.
"""

from typing import Any, Dict, Mapping, Optional

import tensorflow as tf
import tensorflow_transform as tft

from data import schema
from models import features
from models.config import TransformConfig, from_custom_config
from models.owner_tables import owner_history, owner_profile


def _dense(x: tf.Tensor) -> tf.Tensor:
    """Raw FixedLen features arrive as [batch, 1]; work with [batch]."""
    return tf.reshape(x, [-1])


def scale_followers(count: tf.Tensor, scaling: str) -> tf.Tensor:
    """Min-max to [0, 1], of log1p(count) when `scaling == "log"`."""
    x = tf.cast(_dense(count), tf.float32)
    if scaling == "log":
        x = tf.math.log1p(x)
    elif scaling != "minmax":
        raise ValueError(f"unknown follower_scaling {scaling!r}")
    return tft.scale_to_0_1(x)


def multi_hot_categories(categories: tf.SparseTensor, max_categories: int) -> tf.Tensor:
    """[batch, max_categories] 0/1 over the most frequent categories."""
    ids = tft.compute_and_apply_vocabulary(
        categories,
        top_k=max_categories,
        default_value=-1,
        vocab_filename=features.CATEGORY_VOCABULARY,
    )
    ids = tf.sparse.retain(ids, ids.values >= 0)
    return tf.cast(tf.sparse.to_indicator(ids, max_categories), tf.float32)


def combined_rating(star: tf.Tensor, sentiment: tf.Tensor, star_weight: float, sentiment_weight: float) -> tf.Tensor:
    """The notebook's label: star_weight * star / 5 + sentiment_weight * sentiment."""
    star = tf.cast(_dense(star), tf.float32)
    sentiment = tf.cast(_dense(sentiment), tf.float32)
    return star_weight * star / float(schema.STAR_MAX) + sentiment_weight * sentiment


def influencer_features(inputs: Mapping[str, Any], follower_scaling: str, max_categories: int) -> tf.Tensor:
    """[batch, F]: scaled followers, price, multi-hot categories (notebook order)."""
    numeric = [scale_followers(inputs[name], follower_scaling) for name in features.FOLLOWERS]
    numeric.append(tf.cast(_dense(inputs[features.PRICE]), tf.float32))
    return tf.concat(
        [tf.stack(numeric, axis=1), multi_hot_categories(inputs[features.CATEGORIES], max_categories)],
        axis=1,
    )


def preprocessing_fn(inputs: Dict[str, Any], custom_config: Optional[Dict[str, Any]] = None) -> Dict[str, tf.Tensor]:
    """tf.Transform entry point (TFX Transform passes the pipeline's custom_config)."""
    config = from_custom_config(TransformConfig, custom_config)
    item = influencer_features(inputs, config.follower_scaling, config.max_categories)
    label = combined_rating(inputs[features.STAR_RATING], inputs[features.SENTIMENT], config.star_weight, config.sentiment_weight)
    owner_id = _dense(inputs[features.OWNER_ID])
    influencer_id = _dense(inputs[features.INFLUENCER_ID])
    profile, history_count = owner_profile(owner_id, label, item)
    query_profile, other_hires = leave_row_out(owner_id, influencer_id, label, item, profile, history_count)
    return {
        features.OWNER_ID_KEY: owner_id,
        features.INFLUENCER_ID_KEY: influencer_id,
        features.LABEL_KEY: label,
        features.INFLUENCER_FEATURES_KEY: item,
        features.OWNER_PROFILE_KEY: profile,
        features.OWNER_HISTORY_COUNT_KEY: history_count,
        features.QUERY_PROFILE_KEY: query_profile,
        features.OWNER_HISTORY_KEY: other_hires.to_sparse(),
    }


def leave_row_out(owner_id, influencer_id, label, item, profile, history_count):
    """The owner's profile and hires without this row's own influencer.

    A train row's influencer is part of its owner's train profile and history;
    a model that sees it there learns to find the answer in its input, which it
    never can at serving time (where the query is the whole history). So the
    query features of a row exclude the row itself; eval rows (not in the train
    tables) and serving requests (influencer id -1) keep everything.
    """
    hires = owner_history(owner_id, influencer_id)
    is_own = tf.equal(hires, influencer_id[:, None])
    in_history = tf.reduce_any(is_own, axis=1)
    count = history_count[:, None]
    without_row = (profile * count - label[:, None] * item) / tf.maximum(count - 1.0, 1.0)
    # An owner whose only train row is this one has no profile left: use zeros
    # (its count feature says so).
    without_row = tf.where(count > 1.0, without_row, tf.zeros_like(without_row))
    query_profile = tf.where(in_history[:, None], without_row, profile)
    return query_profile, tf.ragged.boolean_mask(hires, tf.logical_not(is_own))
