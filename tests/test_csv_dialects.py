"""validate and the pipeline's ExampleGen read every CSV alike: the same generated messy files go to both.

Property-style: seeded random combinations of byte-order marks, CRLF line
ends, blank lines, quoting (commas and line breaks inside quotes), spaces in
the header, extra columns, column order, and non-UTF-8 encodings. For every
file validate accepts, ExampleGen's reader yields exactly the rows validate
checked; every file it refuses is refused with the file, and a row where the
problem is a row's; nothing ever raises anything but DataValidationError.
"""

import random

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from components.interaction_example_gen import ReadRecords
from data import csv_files, records, schema
from data.validate import DataValidationError, validate_data

CATEGORIES = ["Action", "Drama", "Sci-Fi", "Slice of Life", "Kids"]


def _influencers(rng):
    rows = []
    for i in range(1, rng.randint(3, 8) + 1):
        cats = rng.sample(CATEGORIES, rng.randint(1, 3))
        rows.append({"id": i, "insta_follower": rng.randint(0, 10**6), "tiktok": rng.randint(0, 10**6), "youtube": rng.randint(0, 10**6),
                     "price_normalized": round(rng.random(), 4), "categories": ",".join(cats)})
    return rows


def _history(rng, influencers):
    return [{"own_id": rng.randint(1, 5), "inf_id": rng.choice(influencers)["id"], "star_rating": rng.randint(1, 5),
             "sentiment_rating": round(rng.random(), 3)} for _ in range(rng.randint(3, 12))]


def _quote(value, rng, force):
    text = str(value)
    if force or "," in text or rng.random() < 0.2:
        return '"' + text.replace('"', '""') + '"'
    return text


def _write(path, columns, rows, rng, style):
    """One messy rendering of `rows` with the style's quirks; returns nothing (the file is the result)."""
    order = list(columns) + (["notes"] if style["extra_column"] else [])
    if style["shuffle_columns"]:
        rng.shuffle(order)
    newline = "\r\n" if style["crlf"] else "\n"
    sep = ", " if style["header_spaces"] else ","
    lines = [sep.join(f" {c} " if style["header_spaces"] else c for c in order)]
    for row in rows:
        values = {**row, "notes": 'said "hi",\nthen left' if style["multiline"] else "n/a"}
        lines.append(",".join(_quote(values[c], rng, style["multiline"] and c == "notes") for c in order))
        if style["blank_lines"] and rng.random() < 0.3:
            lines.append("")
    text = newline.join(lines) + (newline if rng.random() < 0.7 else "")
    data = text.encode(style["encoding"])
    if style["bom"]:
        data = b"\xef\xbb\xbf" + data
    with open(path, "wb") as handle:
        handle.write(data)


def _styles(n):
    rng = random.Random(1234)
    keys = ("bom", "crlf", "blank_lines", "header_spaces", "extra_column", "shuffle_columns", "multiline")
    for case in range(n):
        style = {key: rng.random() < 0.5 for key in keys}
        style["encoding"] = "latin-1" if rng.random() < 0.15 else "utf-8"
        yield case, style


def _example_gen_reads(path, columns, parse, want):
    """Runs ExampleGen's own read of `path` in Beam and checks it yields exactly `want`."""
    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as pipeline:
        assert_that(pipeline | ReadRecords(path, columns, parse), equal_to(want))


@pytest.mark.parametrize("case, style", list(_styles(24)))
def test_validate_and_example_gen_agree_on_messy_files(tmp_path, case, style):
    rng = random.Random(case)
    influencers = _influencers(rng)
    history = _history(rng, influencers)
    if style["encoding"] == "latin-1":
        influencers[0]["categories"] = "Café"  # a byte that is not UTF-8
    _write(tmp_path / schema.INFLUENCER_FILE, schema.INFLUENCER_COLUMNS, influencers, rng, style)
    _write(tmp_path / schema.HISTORY_FILE, schema.HISTORY_COLUMNS, history, rng, style)
    try:
        report = validate_data(str(tmp_path))
    except DataValidationError as error:
        assert style["encoding"] == "latin-1", f"{style}: {error}"  # the only quirk validate refuses
        assert schema.INFLUENCER_FILE in str(error) and "UTF-8" in str(error)
        return
    assert style["encoding"] == "utf-8"
    assert report.influencer_rows == len(influencers) and report.history_rows == len(history)
    want = [records.influencer_from_values(*(str(row[c]) for c in schema.INFLUENCER_COLUMNS)) for row in influencers]
    _example_gen_reads(str(tmp_path / schema.INFLUENCER_FILE), schema.INFLUENCER_COLUMNS, records.influencer_from_values, want)
    want = [records.interaction_from_values(*(str(row[c]) for c in schema.HISTORY_COLUMNS)) for row in history]
    _example_gen_reads(str(tmp_path / schema.HISTORY_FILE), schema.HISTORY_COLUMNS, records.interaction_from_values, want)


@pytest.mark.parametrize("shards", [1, 2, 3, 8, 40])
def test_the_shards_of_a_file_hold_each_of_its_rows_once(tmp_path, shards):
    """ExampleGen's readers split a file by records, not bytes: quoted line breaks and blank lines included."""
    rng = random.Random(shards)
    style = {"bom": True, "crlf": True, "blank_lines": True, "header_spaces": False, "extra_column": True, "shuffle_columns": False,
             "multiline": True, "encoding": "utf-8"}
    history = _history(rng, _influencers(rng)) * 3
    path = tmp_path / schema.HISTORY_FILE
    _write(path, schema.HISTORY_COLUMNS, history, rng, style)
    with csv_files.open_text(str(path)) as handle:
        header, rows = csv_files.read_rows(handle)
        whole = [row.fields for row in rows]
    parts = []
    for shard in range(shards):
        with csv_files.open_text(str(path)) as handle:
            shard_header, fields = csv_files.read_shard(handle, shard, shards)
            assert shard_header == header
            parts += list(fields)
    assert len(whole) == len(history) and sorted(parts) == sorted(whole)
