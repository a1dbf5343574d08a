"""Why an influencer is recommended, read off the served dot product exactly.

The served score of influencer j for an owner is one dot product of concatenated vectors:

    score(j) = tower_weight * <tower query, tower candidate j>  +  sum over the owner's hires h of <q_h, c_j>

(models/hybrid.py; q_h is hire h's item-factor query vector, already weighted). So each past
hire's part of a score is the term <q_h, c_j>, and the towers' part is the first term; the parts
sum to the score. A share is a part divided by that sum: the shares of all hires plus the
towers' share make 1 (a share is negative when a hire speaks against the influencer).
"""

from typing import Dict

import tensorflow as tf

from models.filters import EMPTY_ID

EXPLAINED_HIRES = 3  # past hires shown per recommended influencer
HIRE_IDS_KEY = "explain_hire_ids"  # [batch, k, EXPLAINED_HIRES] the hires with the largest parts, EMPTY_ID past the owner's hires
HIRE_SHARES_KEY = "explain_hire_shares"  # [batch, k, EXPLAINED_HIRES] their shares of the score, 0 where no hire
TOWER_SHARE_KEY = "tower_share"  # [batch, k] the towers' share of the score
EXPLANATION_KEYS = (HIRE_IDS_KEY, HIRE_SHARES_KEY, TOWER_SHARE_KEY)


def explanations(
    ids: tf.Tensor, candidates: tf.Tensor, tower_query: tf.Tensor, tower_width: tf.Tensor, hire_ids: tf.Tensor, hire_queries: tf.Tensor
) -> Dict[str, tf.Tensor]:
    """The parts of each returned influencer's score.

    ids: [batch, k] returned influencer ids (EMPTY_ID: an empty slot); candidates: [batch, k, D] their catalog
    embeddings; tower_query: [batch, tower_width] the weighted tower query; hire_ids: [batch, H] each owner's
    hires that carry item factors (EMPTY_ID padding); hire_queries: [batch, H, D - tower_width] their item
    query vectors (zeros at padding).
    """
    found = ids != EMPTY_ID
    towers = tf.einsum("bt,bkt->bk", tower_query, candidates[:, :, :tower_width])
    parts = tf.einsum("bhr,bkr->bkh", hire_queries, candidates[:, :, tower_width:])  # [batch, k, H]
    total = towers + tf.reduce_sum(parts, axis=2)
    has_hire = hire_ids != EMPTY_ID
    ranked = tf.where(has_hire[:, None, :], parts, tf.fill(tf.shape(parts), parts.dtype.min))
    n = tf.minimum(tf.shape(parts)[2], EXPLAINED_HIRES)
    top_parts, top_hires = tf.math.top_k(ranked, k=n)
    chosen_ids = tf.gather(hire_ids, top_hires, batch_dims=1)
    chosen_ok = tf.gather(has_hire, top_hires, batch_dims=1) & found[:, :, None]
    pad = [[0, 0], [0, 0], [0, EXPLAINED_HIRES - n]]
    chosen_ids = tf.pad(tf.where(chosen_ok, chosen_ids, EMPTY_ID), pad, constant_values=EMPTY_ID)
    shares = tf.pad(tf.where(chosen_ok, tf.math.divide_no_nan(top_parts, total[:, :, None]), 0.0), pad)
    tower_share = tf.where(found, tf.math.divide_no_nan(towers, total), 0.0)
    return {HIRE_IDS_KEY: chosen_ids, HIRE_SHARES_KEY: shares, TOWER_SHARE_KEY: tower_share}
