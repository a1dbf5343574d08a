"""Batch scoring's input reading: one id rule (data/records.py), one bad line never spoils the others."""

import pytest

from data.records import DataValidationError
from components.batch_scorer.owners import ReadOwners, read_hire_pairs, read_owner_column


def _owners(path):
    """What ReadOwners emits for a file: ([valid owner ids], [dead letters])."""
    valid, dead = [], []
    for item in ReadOwners().process(str(path)):
        if hasattr(item, "tag"):
            dead.append(item.value)
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
    path.write_bytes(b"\xef\xbb\xbfown_id,inf_id\r\n5,1\r\n\xff\xfe,2\r\n\r\n7,3\r\n")
    valid, dead = _owners(path)
    assert valid == [5, 7]
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
