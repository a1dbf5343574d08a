"""benchmarks/catalog_refresh.py's held-out data and its ranking of targets (the pipeline runs are the benchmark's own)."""

import os

import numpy as np
import pandas as pd
import tensorflow as tf

from benchmarks import catalog_refresh
from data import schema
from data.generate import generate


def test_hold_out_drops_the_influencers_and_every_row_naming_them(tmp_path):
    generate(str(tmp_path / "in"), n_influencers=100, n_owners=20, n_interactions=500, seed=1)
    held = catalog_refresh.hold_out(str(tmp_path / "in"), str(tmp_path / "out"), share=0.1, seed=3)
    assert len(held) == 10 and len(set(held.tolist())) == 10
    before = pd.read_csv(tmp_path / "in" / schema.INFLUENCER_FILE)
    after = pd.read_csv(tmp_path / "out" / schema.INFLUENCER_FILE)
    assert set(after[schema.INFLUENCER_ID]) == set(before[schema.INFLUENCER_ID]) - set(held.tolist())
    history = pd.read_csv(tmp_path / "in" / schema.HISTORY_FILE)
    kept = pd.read_csv(tmp_path / "out" / schema.HISTORY_FILE)
    assert not kept[schema.HISTORY_INFLUENCER_ID].isin(held).any()
    assert len(kept) == (~history[schema.HISTORY_INFLUENCER_ID].isin(held)).sum()
    assert os.path.getsize(tmp_path / "out" / schema.HISTORY_FILE) > 0


class _Model:
    """query_embedding as a signature: owner o's query is row o of `queries`."""

    def __init__(self, queries):
        self.signatures = {"query_embedding": lambda owner_id: {"embedding": tf.gather(tf.constant(queries, tf.float32), owner_id)}}


def test_target_ranks_count_better_candidates_and_skip_known_hires():
    embeddings = np.array([[3.0], [2.0], [1.0], [0.5]], np.float32)
    ids = np.array([10, 11, 12, 13])
    model = _Model(np.array([[1.0], [-1.0]]))
    # Owner 0 prefers 10 > 11 > 12 > 13 and already hired 10; owner 1 the reverse order.
    ranks = catalog_refresh.target_ranks(model, embeddings, ids, np.array([0, 0, 1]), np.array([12, 11, 12]), (np.array([0]), np.array([10])))
    assert ranks.tolist() == [1, 0, 1]
