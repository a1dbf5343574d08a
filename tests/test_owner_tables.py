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


def test_the_transform_hire_history_is_each_owners_distinct_hires_over_every_batch():
    """The analyzer's per-batch partial sets and their union give the owners' sorted distinct hires (the asset's lines)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from models.owner_tables import _UnionArrays, _format_history, _partial_hires

    rng = np.random.default_rng(0)
    owners, influencers = rng.integers(0, 6, 300), rng.integers(0, 40, 300)
    batches = [(owners[i : i + 37, None], influencers[i : i + 37, None]) for i in range(0, 300, 37)]
    want = [f"{o}\t{','.join(str(i) for i in sorted(set(influencers[owners == o].tolist())))}" for o in sorted(set(owners.tolist()))]
    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as pipeline:
        lines = (pipeline | beam.Create(batches, reshuffle=False) | beam.FlatMap(_partial_hires)
                 | beam.CombinePerKey(_UnionArrays()) | beam.Map(_format_history))
        assert_that(lines, equal_to(want))
