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


def _analyzer_lines(batches, rows_fn, merge, lines_fn):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from models.owner_tables import _OwnerTable

    def check(want):
        with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as pipeline:
            lines = pipeline | beam.Create(batches, reshuffle=False) | beam.FlatMap(rows_fn) | beam.CombinePerKey(_OwnerTable(merge)) | beam.FlatMap(lines_fn)
            assert_that(lines, equal_to(want))

    return check


def test_the_transform_hire_history_is_each_owners_distinct_hires_over_every_batch():
    """Per-batch partial sets, by shard, and their union give the owners' sorted distinct hires (the asset's lines)."""
    from models.owner_tables import _hire_rows, _history_lines, distinct_pairs

    rng = np.random.default_rng(0)
    owners, influencers = rng.integers(0, 40, 300), rng.integers(0, 40, 300)
    batches = [(owners[i : i + 37, None], influencers[i : i + 37, None]) for i in range(0, 300, 37)]
    want = [f"{o}\t{','.join(str(i) for i in sorted(set(influencers[owners == o].tolist())))}" for o in sorted(set(owners.tolist()))]
    _analyzer_lines(batches, _hire_rows, distinct_pairs, _history_lines)(want)


def test_the_transform_owner_profile_is_the_mean_of_label_times_features_over_every_batch():
    """The profile asset's lines against pandas: each owner's row count, then the mean of label * features."""
    import pandas as pd

    from models.owner_tables import _profile_lines, _profile_rows, summed_per_owner

    rng = np.random.default_rng(1)
    owners, labels, items = rng.integers(0, 50, 400), rng.random(400).astype(np.float32), rng.random((400, 3)).astype(np.float32)
    frame = pd.DataFrame(items.astype(np.float64) * labels[:, None].astype(np.float64)).assign(owner=owners)
    means, counts = frame.groupby("owner").mean(), frame.groupby("owner").size()
    want = [f"{o}\t{counts[o]}," + ",".join("%.9g" % v for v in means.loc[o]) for o in means.index]
    batches = [(owners[i : i + 64], labels[i : i + 64], items[i : i + 64]) for i in range(0, 400, 64)]
    _analyzer_lines(batches, _profile_rows, summed_per_owner, _profile_lines)(want)


def test_a_shards_table_stays_the_size_of_its_owners_however_many_rows_pass(monkeypatch):
    """The combine's accumulator is compacted as rows arrive: memory follows the owners, not the rows."""
    from models import owner_tables

    monkeypatch.setattr(owner_tables, "_MIN_COMPACT_ROWS", 8)
    table = owner_tables._OwnerTable(owner_tables.summed_per_owner)
    acc, rng = table.create_accumulator(), np.random.default_rng(2)
    for _ in range(500):  # 10,000 rows of 20 owners
        acc = table.add_input(acc, (rng.integers(0, 20, 20), np.ones((20, 2))))
        assert sum(len(part[0]) for part in acc.parts) <= 2 * 20 + 8 + 20
    owner_ids, sums = table.extract_output(table.merge_accumulators([acc, table.create_accumulator()]))
    assert owner_ids.tolist() == list(range(20)) and sums.sum() == 2 * 10_000
