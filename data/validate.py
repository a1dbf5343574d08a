"""Check the user's two seed CSVs before a pipeline run, streaming row by row.

Only the influencer ids (and distinct owner ids) are held in memory, so a
10M-row history file is fine.  Strict mode reports every problem at once;
drop mode writes cleaned copies without the bad rows and says what it dropped.
Row rules live in data.records; this module adds file-level and cross-row checks.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import difflib
import operator
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from data import records, schema
from data.atomic import atomic_text_file
from data.records import DataValidationError, FieldError, Problem  # re-exported

__all__ = ["DataValidationError", "Problem", "ValidationReport", "validate_data", "PROGRESS_EVERY"]

PROGRESS_EVERY = 1_000_000
ROW_FIELD = "(row)"  # field name used for whole-row problems such as a wrong field count
EXPECT_UNIQUE_ID = "a unique influencer id"
EXPECT_KNOWN_ID = f"an id from a valid row of {schema.INFLUENCER_FILE}"
STRICT_ADVICE = "Fix these rows, or rerun with --drop-invalid to drop invalid rows (counts are reported)."

Progress = Optional[Callable[[str], None]]
CsvReader = CsvWriter = Any  # csv does not export its reader/writer types


@dataclasses.dataclass
class ValidationReport:
    """What validation found; *_path are the files a pipeline should ingest."""

    influencer_rows: int
    history_rows: int
    owners: int  # distinct own_id among the kept history rows
    dropped: Dict[str, int]  # "file: field: expected ..." -> rows dropped for it
    influencer_path: str
    history_path: str
    examples: List[Problem] = dataclasses.field(default_factory=list)  # first dropped rows

    def summary(self) -> str:
        """Counts, ingested files and drop reasons, for a human reading the log."""
        lines = [
            f"{self.influencer_rows:,} influencers, {self.history_rows:,} history rows, {self.owners:,} owners",
            f"ingest: {self.influencer_path}",
            f"        {self.history_path}",
        ]
        total = sum(self.dropped.values())
        if total:
            lines.append(f"dropped {total:,} invalid rows:")
            lines += [f"  {n:>9,}  {reason}" for reason, n in sorted(self.dropped.items(), key=lambda kv: -kv[1])]
        return "\n".join(lines)


class _Problems:
    """Keeps the first MAX_SHOWN problems, counts all, and tallies dropped rows by reason."""

    def __init__(self) -> None:
        self.shown: List[Problem] = []
        self.total = 0
        self.file_level = False
        self.dropped: Dict[str, int] = collections.Counter()

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.shown) < records.MAX_SHOWN:
            self.shown.append(problem)
        if problem.row is None:
            self.file_level = True
        else:
            self.dropped[f"{os.path.basename(problem.path)}: {problem.field}: expected {problem.expected}"] += 1

    def add_field_error(self, path: str, row: int, line: int, err: FieldError) -> None:
        self.add(Problem(path, err.field, err.expected, records.show(err.got), row, line))

    def error(self, first: Sequence[Problem] = (), advice: str = "") -> DataValidationError:
        return DataValidationError([*first, *self.shown], self.total + len(first), advice)


def _missing_file(path: str, columns: Sequence[str]) -> Problem:
    directory, name = os.path.split(path)
    if not os.path.isdir(directory or "."):
        got = f"no such file (directory {directory!r} does not exist)"
    else:
        csvs = sorted(f for f in os.listdir(directory or ".") if f.lower().endswith(".csv"))
        guess = difflib.get_close_matches(name, csvs, n=1, cutoff=0.5)
        got = "no such file"
        if guess:
            got += f"; did you mean {guess[0]!r}? (rename it to {name!r})"
        elif csvs:
            got += f"; the directory has {', '.join(csvs[:5])}"
    return Problem(path, None, f"a CSV file {name} with columns {', '.join(columns)}", got)


def _unreadable(path: str, err: Exception, line: int) -> Problem:
    """Problem for a file csv cannot read on; the whole file is unusable past it."""
    if isinstance(err, UnicodeDecodeError):
        # The decoder reads ahead in blocks, so find the real line (rare path: rescan in binary).
        with open(path, "rb") as raw:
            for line, data in enumerate(raw, 1):
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError as bad:
                    err = bad
                    break
        return Problem(path, None, "UTF-8 text (save the CSV as UTF-8)", f"undecodable bytes ({err.reason})", line=line)
    return Problem(path, None, "well-formed CSV", f"unreadable data ({err})", line=line)


@contextlib.contextmanager
def _table(
    path: str, columns: Sequence[str], problems: _Problems
) -> Iterator[Optional[Tuple[CsvReader, List[str], Dict[str, int]]]]:
    """Open a CSV and check its header; yields None (problem recorded) if unusable."""
    if not os.path.isfile(path):
        problems.add(_missing_file(path, columns))
        yield None
        return
    # utf-8-sig: Excel (which made the seed data) prefixes a BOM that would hide the first column.
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error) as err:
            problems.add(_unreadable(path, err, 1))
            header = None
        else:
            if header is None:
                problems.add(Problem(path, None, f"a header line with columns {', '.join(columns)}", "an empty file"))
        if header is None:
            yield None
            return
        try:
            index = records.check_header(path, header, columns)
        except DataValidationError as err:
            for problem in err.problems:
                problems.add(problem)
            yield None
            return
        yield reader, header, index


def _data_rows(
    path: str, reader: CsvReader, width: int, problems: _Problems, progress: Progress
) -> Iterator[Tuple[int, List[str]]]:
    """Yield (row number, fields) for rows of the header's width; record the others."""
    row = 0
    every = PROGRESS_EVERY
    name = os.path.basename(path)
    try:
        for fields in reader:
            if not fields:  # blank line, as pandas skips it
                continue
            row += 1
            if progress is not None and row % every == 0:
                progress(f"{name}: {row:,} rows checked")
            if len(fields) != width:
                if len(fields) > width:  # classic cause: an unquoted categories value
                    expected = f"{width} fields like the header (quote values containing {schema.CATEGORY_SEPARATOR!r})"
                    problems.add(Problem(path, ROW_FIELD, expected, f"{len(fields)} fields", row, reader.line_num))
                    continue
                fields += [None] * (width - len(fields))  # type: ignore[list-item]  # parsers report them missing
            yield row, fields
    except (UnicodeDecodeError, csv.Error) as err:
        problems.add(_unreadable(path, err, reader.line_num + 1))
    if row == 0:
        problems.add(Problem(path, None, "at least one data row", "only the header"))
    if progress is not None:
        progress(f"{name}: {row:,} rows checked, done")


def _scan_influencers(
    path: str, problems: _Problems, out: Optional[CsvWriter], progress: Progress
) -> Tuple[Optional[Set[int]], int]:
    """Check the influencer file; return (ids history may refer to, kept rows)."""
    first_seen: Dict[int, Tuple[int, int]] = {}  # id -> (row, line) of its kept occurrence
    parseable: Set[int] = set()  # ids of rows rejected for another field (strict mode only)
    with _table(path, schema.INFLUENCER_COLUMNS, problems) as table:
        if table is None:
            return None, 0
        reader, header, index = table
        if out is not None:
            out.writerow(header)
        values = operator.itemgetter(*(index[c] for c in schema.INFLUENCER_COLUMNS))
        parse = records.influencer_from_values
        for row, fields in _data_rows(path, reader, len(header), problems, progress):
            try:
                influencer = parse(*values(fields))
            except FieldError as err:
                problems.add_field_error(path, row, reader.line_num, err)
                if out is None and err.field != schema.INFLUENCER_ID:
                    # Strict mode: don't also flag every history row that names this id.
                    with contextlib.suppress(FieldError):
                        parseable.add(records.parse_count(fields[index[schema.INFLUENCER_ID]], schema.INFLUENCER_ID))
                continue
            seen = first_seen.get(influencer.id)
            if seen is not None:
                raw = records.show(fields[index[schema.INFLUENCER_ID]])
                got = f"{raw}, already used on row {seen[0]} (line {seen[1]})"
                problems.add(Problem(path, schema.INFLUENCER_ID, EXPECT_UNIQUE_ID, got, row, reader.line_num))
                continue
            first_seen[influencer.id] = (row, reader.line_num)
            if out is not None:
                out.writerow(fields)
    return set(first_seen) | parseable, len(first_seen)


def _scan_history(
    path: str, known: Optional[Set[int]], problems: _Problems, out: Optional[CsvWriter], progress: Progress
) -> Tuple[int, int]:
    """Check the history file; return (kept rows, distinct owners). known=None skips the id check."""
    owners: Set[int] = set()
    kept = 0
    with _table(path, schema.HISTORY_COLUMNS, problems) as table:
        if table is None:
            return 0, 0
        reader, header, index = table
        if out is not None:
            out.writerow(header)
        values = operator.itemgetter(*(index[c] for c in schema.HISTORY_COLUMNS))
        parse = records.interaction_from_values
        check_ids = known is not None
        for row, fields in _data_rows(path, reader, len(header), problems, progress):
            try:
                interaction = parse(*values(fields))
            except FieldError as err:
                problems.add_field_error(path, row, reader.line_num, err)
                continue
            if check_ids and interaction.inf_id not in known:  # type: ignore[operator]
                got = records.show(fields[index[schema.HISTORY_INFLUENCER_ID]])
                problems.add(Problem(path, schema.HISTORY_INFLUENCER_ID, EXPECT_KNOWN_ID, got, row, reader.line_num))
                continue
            owners.add(interaction.own_id)
            kept += 1
            if out is not None:
                out.writerow(fields)
    return kept, len(owners)


def _stop_if_unusable(problems: _Problems, path: str, kept: int) -> None:
    """Drop mode can skip bad rows but not a bad file, nor leave a file empty."""
    if problems.file_level:
        raise problems.error()
    if kept == 0:
        empty = Problem(path, None, "at least one valid data row", "none left after dropping invalid rows")
        raise problems.error([empty])


def validate_data(
    data_dir: str,
    drop_invalid: bool = False,
    cleaned_dir: Optional[str] = None,
    progress: Progress = None,
) -> ValidationReport:
    """Validate data_dir's influencer and history CSVs.

    Strict (default): raise DataValidationError listing the problems if there
    are any.  drop_invalid=True: drop bad rows (keeping the first of duplicated
    influencer ids, and dropping history rows whose influencer was dropped or
    unknown), write cleaned copies into cleaned_dir atomically, and report the
    drops; file-level problems, or a file with no valid row left, still raise.
    """
    if drop_invalid != (cleaned_dir is not None):
        raise ValueError("cleaned_dir is required with drop_invalid=True and only allowed with it")
    if cleaned_dir is not None and os.path.realpath(cleaned_dir) == os.path.realpath(data_dir):
        raise ValueError("cleaned_dir must differ from data_dir: the originals are left untouched")
    names = (schema.INFLUENCER_FILE, schema.HISTORY_FILE)
    sources = [os.path.join(data_dir, name) for name in names]
    targets = [os.path.join(cleaned_dir, name) for name in names] if cleaned_dir else sources
    problems = _Problems()
    with contextlib.ExitStack() as stack:  # on any raise, no cleaned file is left behind
        writers: List[Optional[CsvWriter]] = [None, None]
        if drop_invalid:
            writers = [csv.writer(stack.enter_context(atomic_text_file(t)), lineterminator="\n") for t in targets]
        known, influencers = _scan_influencers(sources[0], problems, writers[0], progress)
        if drop_invalid:
            _stop_if_unusable(problems, sources[0], influencers)
        history, owners = _scan_history(sources[1], known, problems, writers[1], progress)
        if drop_invalid:
            _stop_if_unusable(problems, sources[1], history)
        elif problems.total:
            raise problems.error(advice=STRICT_ADVICE)
    return ValidationReport(
        influencer_rows=influencers,
        history_rows=history,
        owners=owners,
        dropped=dict(problems.dropped),
        influencer_path=targets[0],
        history_path=targets[1],
        examples=list(problems.shown),
    )
