"""ScaNN index tuning measures what `recommend` serves, exact fallback included."""

import numpy as np

from models.index import build_index
from models.topk import exact_top_k


def test_rows_left_short_by_their_hires_count_as_exactly_answered():
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((60, 8)).astype(np.float32)
    ids = np.arange(100, 160, dtype=np.int64)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    top, _ = exact_top_k(queries[:1], embeddings, 25)
    exclude = [ids[top[0]]] + [np.array([], np.int64)] * 4  # owner 0 hired its 25 best: 20 fetched leave it nothing
    index, report = build_index(embeddings, ids, queries, k=5, target_recall=0.95, fetch=20, exclude_ids=exclude)
    assert report["exact_fallback_share"] == 0.2
    assert report["recall_at_k"] >= 0.95 and report["fetch"] == 20
