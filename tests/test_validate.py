"""Validation of the user's seed CSVs: every failure must say file, row, field, expected, got."""

import csv
import os
import pickle
from typing import Dict, List, Optional, Sequence

import pytest

from data import records, schema as S
from data import validate
from data.validate import DataValidationError, Problem, ValidationReport, validate_data

INF, HIST = S.INFLUENCER_FILE, S.HISTORY_FILE
Rows = List[Dict[str, str]]


def influencers() -> Rows:
    raw = [("1", "100", "200", "300", "0.5", "Drama,Romance"), ("2", "0", "5", "7", "0", "Action"),
           ("3", "42", "43", "44", "1", " Comedy , Sci-Fi ,")]
    return [dict(zip(S.INFLUENCER_COLUMNS, r)) for r in raw]


def history() -> Rows:
    raw = [("1", "1", "4", "0.8"), ("1", "2", "5", "0.9"), ("2", "3", "3", "0.5"), ("2", "1", "1", "0"), ("3", "2", "2", "1.0")]
    return [dict(zip(S.HISTORY_COLUMNS, r)) for r in raw]


def write_csv(path: str, rows: Rows, columns: Optional[Sequence[str]] = None) -> None:
    columns = list(columns or rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        w.writerows([[r.get(c, "") for c in columns] for r in rows])


def make_data(tmp_path, inf: Optional[Rows] = None, hist: Optional[Rows] = None, inf_columns=None, hist_columns=None) -> str:
    """A valid pair of files, unless the caller passes corrupted rows/columns."""
    d = tmp_path / "data"
    d.mkdir(exist_ok=True)
    write_csv(str(d / INF), influencers() if inf is None else inf, inf_columns or S.INFLUENCER_COLUMNS)
    write_csv(str(d / HIST), history() if hist is None else hist, hist_columns or S.HISTORY_COLUMNS)
    return str(d)


def with_value(rows: Rows, index: int, column: str, value: str) -> Rows:
    rows[index][column] = value
    return rows


def strict_error(data_dir: str) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        validate_data(data_dir)
    return info.value


def where(file: str, row: int, column: str) -> str:
    # No blank lines in these files, so the line is row + 1 (the header is line 1).
    return f"{file} row {row} (line {row + 1}), field {column}"


def test_valid_data_passes_with_counts(tmp_path):
    d = make_data(tmp_path)
    report = validate_data(d)
    assert isinstance(report, ValidationReport)
    assert (report.influencer_rows, report.history_rows, report.owners, report.dropped) == (3, 5, 3, {})
    assert report.influencer_path == os.path.join(d, INF) and report.history_path == os.path.join(d, HIST)
    assert "3 influencers, 5 history rows, 3 owners" in report.summary()


@pytest.mark.parametrize("file,columns", [(INF, S.INFLUENCER_COLUMNS), (HIST, S.HISTORY_COLUMNS)])
def test_missing_file(tmp_path, file, columns):
    d = make_data(tmp_path)
    os.remove(os.path.join(d, file))
    msg = str(strict_error(d))
    assert f"{os.path.join(d, file)}: expected a CSV file {file} with columns {', '.join(columns)}, got no such file" in msg


def test_missing_file_suggests_a_misnamed_one(tmp_path):
    d = make_data(tmp_path)
    os.rename(os.path.join(d, HIST), os.path.join(d, "historical-data.csv"))
    assert "did you mean 'historical-data.csv'?" in str(strict_error(d))


def test_missing_directory(tmp_path):
    msg = str(strict_error(str(tmp_path / "nope")))
    assert "does not exist" in msg and INF in msg and HIST in msg


def test_missing_column(tmp_path):
    d = make_data(tmp_path, hist_columns=[S.OWNER_ID, S.HISTORY_INFLUENCER_ID, S.SENTIMENT])
    msg = str(strict_error(d))
    assert f"{HIST}, field {S.STAR_RATING}: expected a column named '{S.STAR_RATING}' (required: {', '.join(S.HISTORY_COLUMNS)})" in msg
    assert "did you mean" not in msg


def test_renamed_column_suggests_the_closest(tmp_path):
    rows = [{("price" if k == S.PRICE else k): v for k, v in r.items()} for r in influencers()]
    cols = [("price" if c == S.PRICE else c) for c in S.INFLUENCER_COLUMNS]
    msg = str(strict_error(make_data(tmp_path, inf=rows, inf_columns=cols)))
    assert f"{INF}, field {S.PRICE}: expected a column named '{S.PRICE}'" in msg
    assert f"did you mean 'price'? (rename it to '{S.PRICE}')" in msg


def test_case_changed_column_is_suggested(tmp_path):
    cols = ["ID", *S.INFLUENCER_COLUMNS[1:]]
    rows = [{("ID" if k == S.INFLUENCER_ID else k): v for k, v in r.items()} for r in influencers()]
    assert "did you mean 'ID'?" in str(strict_error(make_data(tmp_path, inf=rows, inf_columns=cols)))


@pytest.mark.parametrize(
    "file,column,value,expected",
    [
        (INF, S.INFLUENCER_ID, "abc", records.EXPECT_NON_NEGATIVE),
        (INF, S.INFLUENCER_ID, "1.5", records.EXPECT_NON_NEGATIVE),
        (INF, S.TIKTOK_FOLLOWERS, "", records.EXPECT_NON_NEGATIVE),
        (INF, S.INSTA_FOLLOWERS, "-5", records.EXPECT_NON_NEGATIVE),  # negative follower count
        (INF, S.YOUTUBE_FOLLOWERS, "1e3", records.EXPECT_NON_NEGATIVE),
        (INF, S.PRICE, "cheap", "a number from 0 to 1"),
        (INF, S.PRICE, "1.5", "a number from 0 to 1"),
        (INF, S.PRICE, "-0.1", "a number from 0 to 1"),
        (INF, S.PRICE, "nan", "a number from 0 to 1"),
        (INF, S.CATEGORIES, "", records.EXPECT_CATEGORIES),
        (INF, S.CATEGORIES, " , ,", records.EXPECT_CATEGORIES),
        (HIST, S.OWNER_ID, "x1", records.EXPECT_NON_NEGATIVE),
        (HIST, S.HISTORY_INFLUENCER_ID, "2.5", records.EXPECT_NON_NEGATIVE),
        (HIST, S.STAR_RATING, "four", "an integer from 1 to 5"),
        (HIST, S.STAR_RATING, "7", "an integer from 1 to 5"),
        (HIST, S.STAR_RATING, "0", "an integer from 1 to 5"),
        (HIST, S.SENTIMENT, "1.01", "a number from 0 to 1"),
        (HIST, S.SENTIMENT, "inf", "a number from 0 to 1"),
        (HIST, S.SENTIMENT, "good", "a number from 0 to 1"),
    ],
)
def test_bad_value_names_file_row_field_expected_and_got(tmp_path, file, column, value, expected):
    if file == INF:
        d = make_data(tmp_path, inf=with_value(influencers(), 1, column, value))
    else:
        d = make_data(tmp_path, hist=with_value(history(), 1, column, value))
    err = strict_error(d)
    assert f"{where(file, 2, column)}: expected {expected}, got {value!r}" in str(err)
    # An unparseable influencer id also orphans its 2 history rows; anything else is one problem.
    assert err.total == (3 if column == S.INFLUENCER_ID else 1)
    p = err.problems[0]
    assert isinstance(p, Problem)
    assert (os.path.basename(p.path), p.row, p.line, p.field, p.expected, p.got) == (file, 2, 3, column, expected, repr(value))


def test_message_matches_the_documented_example(tmp_path):
    hist = history() * 4  # 20 rows; corrupt data row 17
    err = strict_error(make_data(tmp_path, hist=with_value([dict(r) for r in hist], 16, S.STAR_RATING, "7")))
    assert f"{HIST} row 17 (line 18), field {S.STAR_RATING}: expected an integer from 1 to 5, got '7'" in str(err)


def test_unknown_influencer_in_history(tmp_path):
    msg = str(strict_error(make_data(tmp_path, hist=with_value(history(), 2, S.HISTORY_INFLUENCER_ID, "99"))))
    assert f"{where(HIST, 3, S.HISTORY_INFLUENCER_ID)}: expected an id from a valid row of {INF}, got '99'" in msg


def test_history_row_of_an_influencer_with_another_bad_field_is_not_flagged_twice(tmp_path):
    err = strict_error(make_data(tmp_path, inf=with_value(influencers(), 0, S.PRICE, "2")))
    assert err.total == 1 and err.problems[0].field == S.PRICE


def test_duplicate_influencer_id_names_both_rows(tmp_path):
    msg = str(strict_error(make_data(tmp_path, inf=with_value(influencers(), 2, S.INFLUENCER_ID, "1"))))
    assert f"{where(INF, 3, S.INFLUENCER_ID)}: expected a unique influencer id, got '1', already used on row 1 (line 2)" in msg


@pytest.mark.parametrize("file,columns", [(INF, S.INFLUENCER_COLUMNS), (HIST, S.HISTORY_COLUMNS)])
def test_header_only_file(tmp_path, file, columns):
    d = make_data(tmp_path)
    write_csv(os.path.join(d, file), [], columns)
    assert f"{os.path.join(d, file)}: expected at least one data row, got only the header" in str(strict_error(d))


def test_empty_file(tmp_path):
    d = make_data(tmp_path)
    open(os.path.join(d, HIST), "w").close()
    assert f"{os.path.join(d, HIST)}: expected a header line with columns {', '.join(S.HISTORY_COLUMNS)}, got an empty file" in str(
        strict_error(d)
    )


def test_unquoted_categories_is_reported_as_a_field_count_problem(tmp_path):
    d = make_data(tmp_path)
    with open(os.path.join(d, INF), "a") as f:
        f.write("4,1,2,3,0.5,Drama,Romance\n")
    msg = str(strict_error(d))
    assert f"{where(INF, 4, validate.ROW_FIELD)}: expected 6 fields like the header (quote values containing ',')" in msg


def test_short_row_reports_the_missing_value(tmp_path):
    d = make_data(tmp_path)
    with open(os.path.join(d, HIST), "a") as f:
        f.write("1,2,3\n")
    assert f"{where(HIST, 6, S.SENTIMENT)}: expected a number from 0 to 1, got a missing value" in str(strict_error(d))


def test_blank_lines_are_skipped_but_lines_still_counted(tmp_path):
    d = make_data(tmp_path)
    path = os.path.join(d, HIST)
    text = open(path).read().replace("\n", "\n\n", 1)  # blank line after the header
    open(path, "w").write(text + "9,1,6,0.5\n")
    assert f"{HIST} row 6 (line 8), field {S.STAR_RATING}" in str(strict_error(d))


def test_excel_bom_and_integral_floats_are_accepted(tmp_path):
    d = make_data(tmp_path, hist=with_value(history(), 0, S.STAR_RATING, "4.0"))
    path = os.path.join(d, INF)
    data = open(path, encoding="utf-8").read()
    open(path, "w", encoding="utf-8-sig").write(data)
    assert validate_data(d).history_rows == 5


def test_undecodable_bytes_are_reported_with_the_line(tmp_path):
    d = make_data(tmp_path)
    with open(os.path.join(d, INF), "ab") as f:
        f.write("4,1,2,3,0.5,Caf\u00e9\n".encode("cp1252"))
    expected = f"{os.path.join(d, INF)} line 5: expected UTF-8 text (save the CSV as UTF-8), got undecodable bytes"
    assert expected in str(strict_error(d))


def test_problem_list_is_capped_at_20_but_all_counted(tmp_path):
    hist = [dict(zip(S.HISTORY_COLUMNS, ("1", "1", "9", "0.5"))) for _ in range(30)]
    err = strict_error(make_data(tmp_path, hist=hist))
    msg = str(err)
    assert err.total == 30 and len(err.problems) == 20
    assert msg.startswith("30 data problems found (showing the first 20):")
    assert msg.count(f"field {S.STAR_RATING}") == 20 and "... and 10 more" in msg
    assert "--drop-invalid" in msg


def test_all_problems_across_both_files_are_reported_together(tmp_path):
    d = make_data(tmp_path, inf=with_value(influencers(), 0, S.PRICE, "9"), hist=with_value(history(), 0, S.STAR_RATING, "9"))
    err = strict_error(d)
    assert {(os.path.basename(p.path), p.field) for p in err.problems} == {(INF, S.PRICE), (HIST, S.STAR_RATING)}


def test_error_pickles(tmp_path):
    err = strict_error(make_data(tmp_path, hist=with_value(history(), 0, S.STAR_RATING, "9")))
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) and again.problems == err.problems
    fe = records.FieldError(S.STAR_RATING, "x", "9")
    assert str(pickle.loads(pickle.dumps(fe))) == str(fe)


def test_extra_and_reordered_columns_are_accepted(tmp_path):
    inf = [dict(r, notes="hello, world") for r in influencers()]
    inf_cols = ["notes", *reversed(S.INFLUENCER_COLUMNS)]
    hist_cols = [S.SENTIMENT, "when", S.STAR_RATING, S.HISTORY_INFLUENCER_ID, S.OWNER_ID]
    report = validate_data(make_data(tmp_path, inf=inf, inf_columns=inf_cols, hist_columns=hist_cols))
    assert (report.influencer_rows, report.history_rows, report.owners) == (3, 5, 3)


def test_quoted_categories_with_commas_parse_to_a_tuple(tmp_path):
    d = make_data(tmp_path)
    with open(os.path.join(d, INF), newline="") as f:
        rows = list(csv.DictReader(f))
    assert '"Drama,Romance"' in open(os.path.join(d, INF)).read()
    assert records.parse_influencer(rows[0]) == records.Influencer(1, 100, 200, 300, 0.5, ("Drama", "Romance"))
    assert records.parse_influencer(rows[2]).categories == ("Comedy", "Sci-Fi")


def test_parse_history_and_field_error_attributes():
    row = dict(zip(S.HISTORY_COLUMNS, ("7", " 3 ", "5.0", "0.25")))
    assert records.parse_history(row) == records.Interaction(7, 3, 5, 0.25)
    with pytest.raises(records.FieldError) as info:
        records.parse_history(dict(row, **{S.STAR_RATING: "1.5"}))
    assert (info.value.field, info.value.expected, info.value.got) == (S.STAR_RATING, "an integer from 1 to 5", "1.5")
    with pytest.raises(records.FieldError, match="got a missing value"):
        records.parse_history({S.OWNER_ID: "1"})


def test_check_header_returns_indices_and_rejects_repeats():
    assert records.check_header("f.csv", [" inf_id", "x", *S.HISTORY_COLUMNS[:1], *S.HISTORY_COLUMNS[2:]], S.HISTORY_COLUMNS) == {
        S.OWNER_ID: 2, S.HISTORY_INFLUENCER_ID: 0, S.STAR_RATING: 3, S.SENTIMENT: 4}
    with pytest.raises(DataValidationError, match=f"f.csv, field {S.OWNER_ID}: expected the column '{S.OWNER_ID}' once"):
        records.check_header("f.csv", [*S.HISTORY_COLUMNS, S.OWNER_ID], S.HISTORY_COLUMNS)


def test_progress_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "PROGRESS_EVERY", 2)
    messages: List[str] = []
    validate_data(make_data(tmp_path), progress=messages.append)
    assert f"{HIST}: 4 rows checked" in messages and f"{HIST}: 5 rows checked, done" in messages


# --- drop_invalid mode -------------------------------------------------------------------------


def snapshot(d: str) -> Dict[str, bytes]:
    return {name: open(os.path.join(d, name), "rb").read() for name in os.listdir(d)}


def test_drop_mode_drops_counts_writes_cleaned_and_keeps_originals(tmp_path):
    inf = influencers() + [dict(influencers()[0], **{S.PRICE: "0.9"})]  # duplicate of id 1: later row dropped
    inf = with_value(inf, 1, S.PRICE, "3")  # influencer 2 invalid: its 2 history rows go too
    hist = with_value(history(), 2, S.STAR_RATING, "0")
    hist.append(dict(hist[0], **{S.HISTORY_INFLUENCER_ID: "77"}))
    d = make_data(tmp_path, inf=inf, hist=hist)
    before = snapshot(d)
    out = str(tmp_path / "clean")
    report = validate_data(d, drop_invalid=True, cleaned_dir=out)
    assert snapshot(d) == before
    assert report.dropped == {
        f"{INF}: {S.PRICE}: expected a number from 0 to 1": 1,
        f"{INF}: {S.INFLUENCER_ID}: expected a unique influencer id": 1,
        f"{HIST}: {S.STAR_RATING}: expected an integer from 1 to 5": 1,
        f"{HIST}: {S.HISTORY_INFLUENCER_ID}: expected an id from a valid row of {INF}": 3,
    }
    assert (report.influencer_rows, report.history_rows, report.owners) == (2, 2, 2)
    assert report.influencer_path == os.path.join(out, INF) and report.history_path == os.path.join(out, HIST)
    assert "dropped 6 invalid rows" in report.summary()
    assert sorted(os.listdir(out)) == sorted([INF, HIST])  # no temp files left
    again = validate_data(out)
    assert (again.influencer_rows, again.history_rows, again.owners) == (2, 2, 2)
    with open(report.influencer_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r[S.INFLUENCER_ID] for r in rows] == ["1", "3"] and rows[0][S.PRICE] == "0.5"
    assert rows[0][S.CATEGORIES] == "Drama,Romance"


def test_drop_mode_keeps_extra_columns_and_header(tmp_path):
    inf = [dict(r, notes="a, b") for r in influencers()]
    cols = ["notes", *S.INFLUENCER_COLUMNS]
    d = make_data(tmp_path, inf=inf, inf_columns=cols)
    report = validate_data(d, drop_invalid=True, cleaned_dir=str(tmp_path / "clean"))
    assert open(report.influencer_path).read() == open(os.path.join(d, INF)).read()


def test_drop_mode_raises_when_nothing_valid_remains(tmp_path):
    hist = [with_value(history(), i, S.STAR_RATING, "9")[i] for i in range(5)]
    d = make_data(tmp_path, hist=hist)
    out = tmp_path / "clean"
    with pytest.raises(DataValidationError) as info:
        validate_data(d, drop_invalid=True, cleaned_dir=str(out))
    assert f"{os.path.join(d, HIST)}: expected at least one valid data row, got none left" in str(info.value)
    assert not out.exists() or os.listdir(out) == []


def test_drop_mode_still_raises_for_file_problems(tmp_path):
    d = make_data(tmp_path)
    os.remove(os.path.join(d, INF))
    with pytest.raises(DataValidationError, match="no such file"):
        validate_data(d, drop_invalid=True, cleaned_dir=str(tmp_path / "clean"))


def test_drop_mode_argument_checks(tmp_path):
    d = make_data(tmp_path)
    with pytest.raises(ValueError, match="cleaned_dir is required"):
        validate_data(d, drop_invalid=True)
    with pytest.raises(ValueError, match="must differ"):
        validate_data(d, drop_invalid=True, cleaned_dir=d)


def test_an_id_past_int64_says_it_does_not_fit_64_bits(tmp_path):
    error = strict_error(make_data(tmp_path, hist=with_value(history(), 1, S.OWNER_ID, str(2**63))))
    assert f"{where(HIST, 2, S.OWNER_ID)}: expected a non-negative integer (this one does not fit a 64-bit integer" in str(error)
    assert records.parse_count(str(2**63 - 1), S.OWNER_ID) == 2**63 - 1


def _one_problem(tmp_path) -> str:
    with pytest.raises(DataValidationError) as error:
        validate_data(str(tmp_path / "data"))
    return str(error.value)


def test_a_semicolon_delimited_file_is_named_as_such_not_as_missing_columns(tmp_path):
    d = make_data(tmp_path)
    text = open(os.path.join(d, INF)).read().replace(",", ";")
    open(os.path.join(d, INF), "w").write(text)
    message = _one_problem(tmp_path)
    assert "fields separated by semicolons, not commas" in message and INF in message
    assert "did you mean" not in message


@pytest.mark.parametrize("make, what", [
    (lambda path: (os.remove(path), os.mkdir(path)), "a directory, not a file"),
    (lambda path: __import__("gzip").open(path + ".tmp", "wb").write(open(path, "rb").read()) and os.replace(path + ".tmp", path), "gzip-compressed"),
    (lambda path: open(path, "wb").write("own_id,inf_id\n1,2\n".encode("utf-16")), "UTF-16 text"),
])
def test_a_folder_or_a_compressed_or_utf16_file_where_a_csv_belongs_says_what_it_is(tmp_path, make, what):
    d = make_data(tmp_path)
    make(os.path.join(d, HIST))
    message = _one_problem(tmp_path)
    assert what in message and HIST in message
    assert "--drop-invalid" not in message  # dropping rows cannot mend a file


def test_repeated_owner_influencer_pairs_are_counted_in_a_warning(tmp_path):
    rows = history()
    d = make_data(tmp_path, hist=rows + [rows[0], rows[0], rows[2]])
    report = validate_data(d)
    assert report.repeated_pairs == 3 and report.history_rows == len(rows) + 3
    assert "warning: 3 history rows repeat an earlier row's (own_id, inf_id) pair" in report.summary()
    (tmp_path / "clean").mkdir()
    assert validate_data(make_data(tmp_path / "clean")).repeated_pairs == 0


def test_header_spaces_crlf_and_quoted_line_breaks_are_read(tmp_path):
    d = make_data(tmp_path)
    body = 'id , insta_follower , tiktok , youtube , price_normalized , categories \r\n1,1,2,3,0.5,"Drama,\r\nRomance"\r\n\r\n2,0,0,0,0,Action\r\n'
    open(os.path.join(d, INF), "w", newline="").write(body)
    write_csv(os.path.join(d, HIST), [dict(zip(S.HISTORY_COLUMNS, ("1", "2", "4", "0.5")))])
    report = validate_data(d)
    assert report.influencer_rows == 2 and report.history_rows == 1
