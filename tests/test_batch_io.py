"""Batch scoring's input reading: one id rule (data/records.py), one bad line never spoils the others."""

import pytest

from data.records import DataValidationError
from components.batch_scorer.owners import (
    CLAIMED, EXTRA_HIRES, OWNERS, TRAIN_HIRES, ReadInputs, read_hire_pairs, read_owner_column, read_owners, shard_input,
)


def _owners(path):
    """What read_owners finds in a file: ([valid owner ids], [dead letters])."""
    valid, dead = [], []
    for kind, item in read_owners(str(path)):
        if kind == "invalid":
            dead.append(item)
        else:
            valid.append(item[0])
    return valid, dead


@pytest.mark.parametrize(
    "raw, reason",
    [
        (str(2**63), "does not fit a 64-bit integer"),
        ("1e3", "a non-negative integer"),
        ("1_000", "a non-negative integer"),
        ("-4", "a non-negative integer"),
        ("1.5", "a non-negative integer"),
    ],
)
def test_only_the_bad_id_is_a_dead_letter(tmp_path, raw, reason):
    path = tmp_path / "ids.txt"
    path.write_text(f"own_id\n1\n{raw}\n12.0\n{2**63 - 1}\n")
    valid, dead = _owners(path)
    assert valid == [1, 12, 2**63 - 1]
    assert [(d["owner"], d["line"]) for d in dead] == [(raw, 3)]
    assert dead[0]["reason"].startswith("invalid owner id") and reason in dead[0]["reason"]


def test_a_non_utf8_line_is_a_dead_letter_not_a_crash(tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes(b"\xef\xbb\xbfown_id,inf_id\r\n5,1\r\n\xff\xfe,2\r\n\r\n7,3\r\n5,4\r\n")
    valid, dead = _owners(path)
    assert valid == [5, 7]  # 5 once, though the file names it twice
    assert [(d["line"], d["owner"]) for d in dead] == [(3, "<not UTF-8>")]
    assert "expected UTF-8 text" in dead[0]["reason"]


def test_history_columns_are_found_after_a_bom_and_header_spaces(tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes(b"\xef\xbb\xbfinf_id, own_id\n1, 9\n2,10\n")
    assert list(read_owner_column(str(path))) == [("9", 2), ("10", 3)]


def test_hire_pairs_skip_bad_ids_and_need_both_columns(tmp_path):
    path = tmp_path / "hires.csv"
    path.write_bytes(b"own_id,inf_id\n1,2\n1,1e3\n\xff,3\n4,5\n")
    assert list(read_hire_pairs(str(path))) == [(1, 2), (4, 5)]
    (tmp_path / "bad.csv").write_text("owner,inf_id\n1,2\n")
    with pytest.raises(DataValidationError, match="own_id"):
        list(read_hire_pairs(str(tmp_path / "bad.csv")))


def _shards(tmp_path, shards=3):
    """Every shard's ShardInput for an owners id list, the model's hire table and a user history CSV."""
    owners = tmp_path / "ids.txt"
    owners.write_text("own_id\n4\n7\nabc\n4\n9\n-1\n")
    table = tmp_path / "served_history.tsv"
    table.write_text("4\t10,11\n7\t12\n8\t13\n")
    extra = tmp_path / "extra.csv"
    extra.write_text("own_id,inf_id\n4,14\n9,15\n9,x\n")
    reader = ReadInputs(shards)
    grouped = {}
    for kind, path in ((OWNERS, owners), (TRAIN_HIRES, table), (EXTRA_HIRES, extra)):
        for shard, item in reader.process((kind, str(path))):
            grouped.setdefault(shard, []).append(item)
    return str(owners), grouped


def test_each_shard_gets_its_owners_with_all_their_hires_and_a_count_of_what_it_was_sent(tmp_path):
    owners, grouped = _shards(tmp_path)
    assert sorted(grouped) == [0, 1, 2]  # every shard hears from the owners file, even one that gets no owner
    given = {shard: shard_input(items) for shard, items in grouped.items()}
    rows = {row.owner_id: row for shard in given.values() for row in shard.owners}
    assert {owner: (row.line, row.exclude) for owner, row in rows.items()} == {4: (2, (10, 11, 14)), 7: (3, (12,)), 9: (6, (15,))}
    assert all(row.file == owners for row in rows.values())
    assert all(row.owner_id % 3 == shard for shard, g in given.items() for row in g.owners)
    letters = sorted((d["line"], d["owner"]) for g in given.values() for d in g.invalid)
    assert letters == [(4, "abc"), (7, "-1")]
    # what each shard was promised is what it holds: 3 distinct owners and 2 bad lines in all
    assert all(g.claimed == len(g.owners) + len(g.invalid) for g in given.values())
    assert sum(g.claimed for g in given.values()) == 5


def test_a_shard_missing_items_is_seen_by_its_count(tmp_path):
    _, grouped = _shards(tmp_path)
    items = [item for item in grouped[1] if item[0] != "owner"]  # shard 1: owners 4 and 7, bad lines 4 and 7; the owners lost
    given = shard_input(items)
    assert (len(given.owners), len(given.invalid), given.claimed) == (0, 2, 4)
    assert [item for item in grouped[1] if item[0] == CLAIMED] == [(CLAIMED, 4)]
