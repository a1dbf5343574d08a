"""ExampleGen's rating_eval split: a fixed-size sample of eval rows by their hash, the same rows in any order."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from components.interaction_example_gen import HashSample, _row_hash

ROWS = [f"row {n}".encode() for n in range(50)]


def _sample(rows, n):
    with TestPipeline() as pipeline:
        assert_that(pipeline | beam.Create(rows, reshuffle=False) | HashSample(n), equal_to(sorted(ROWS, key=_row_hash)[:n]))


def test_the_sample_is_the_rows_of_smallest_hash_whatever_their_order():
    _sample(ROWS, 7)
    _sample(list(reversed(ROWS)), 7)


def test_a_split_below_the_cap_is_copied_whole():
    _sample(ROWS, 1000)
