"""The served owner tables: every row given, looked up in the graph; unknown owners get the fallback."""

import numpy as np
import tensorflow as tf

from models import features
from models.owner_rows import OwnerRows, Rows
from models.owner_tables import served_tables, write_served_history
from models.serving import OwnerLookup

# Owner 7's only row would be in the eval split: the served tables still give it its own profile.
OWNERS = np.array([5, 5, 9, 7, 5])
INFLUENCERS = np.array([1, 2, 1, 3, 2])
CATALOG_IDS = np.array([3, 1, 2])  # any order: rows find their influencer's features by id
CATALOG_FEATURES = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]], np.float32)
ITEMS = CATALOG_FEATURES[[1, 2, 1, 0, 2]]  # each row's influencer features, for the pandas-style oracle
LABELS = np.array([1.0, 0.5, 1.0, 0.8, 0.5], np.float32)
FALLBACK = np.array([9.0, 9.0], np.float32)


def _tables():
    return served_tables(OwnerRows(Rows(OWNERS, INFLUENCERS, LABELS), CATALOG_IDS), CATALOG_FEATURES)


def test_profiles_counts_and_hires_cover_every_row():
    tables = _tables()
    assert tables["owner_ids"].tolist() == [5, 7, 9]
    np.testing.assert_allclose(tables["profiles"][0], (ITEMS[[0, 1, 4]] * LABELS[[0, 1, 4], None]).mean(axis=0))
    np.testing.assert_allclose(tables["profiles"][1], [0.4, 0.4])
    assert tables["counts"].tolist() == [3.0, 1.0, 1.0]
    splits = tables["hire_splits"]
    assert [sorted(tables["hires"][splits[r] : splits[r + 1]].tolist()) for r in range(3)] == [[1, 2], [3], [1]]  # distinct hires


def test_lookup_in_the_graph_and_the_fallback(tmp_path):
    tables = _tables()
    found = OwnerLookup(tables, FALLBACK)(tf.constant([7, 12345, 5], tf.int64))
    np.testing.assert_allclose(found[features.QUERY_PROFILE_KEY].numpy(), [[0.4, 0.4], FALLBACK, tables["profiles"][0]])
    assert found[features.OWNER_HISTORY_COUNT_KEY].numpy().tolist() == [1.0, 0.0, 3.0]
    assert tf.sparse.to_dense(found[features.OWNER_HISTORY_KEY], default_value=-1).numpy().tolist() == [[3, -1], [-1, -1], [1, 2]]
    write_served_history(str(tmp_path / "hires.tsv"), tables)
    assert (tmp_path / "hires.tsv").read_text() == "5\t1,2\n7\t3\n9\t1\n"
