"""Check the user's two seed CSVs before a pipeline run, streaming row by row.

Only the influencer ids (and distinct owner ids) are held in memory, so a
10M-row history file is fine.  Strict mode reports every problem at once;
drop mode writes cleaned copies without the bad rows and says what it dropped.
Row rules live in data.records; this module adds file-level and cross-row checks.
"""

from __future__ import annotations

import array
import collections
import contextlib
import csv
import dataclasses
import difflib
import operator
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from data import csv_files, records, schema
from data.atomic import atomic_text_file
from data.records import DataValidationError, FieldError, Problem  # re-exported

__all__ = ["DataValidationError", "Problem", "ValidationReport", "validate_data", "read_influencers", "PROGRESS_EVERY"]

PROGRESS_EVERY = 1_000_000
ROW_FIELD = "(row)"  # field name used for whole-row problems such as a wrong field count
EXPECT_UNIQUE_ID = "a unique influencer id"
EXPECT_KNOWN_ID = f"an id from a valid row of {schema.INFLUENCER_FILE}"
STRICT_ADVICE = "Fix these rows, or rerun with --drop-invalid to drop invalid rows (counts are reported)."

Progress = Optional[Callable[[str], None]]
CsvWriter = Any  # csv does not export its writer type


@dataclasses.dataclass
class ValidationReport:
    """What validation found; *_path are the files a pipeline should ingest."""

    influencer_rows: int
    history_rows: int
    owners: int  # distinct own_id among the kept history rows
    repeated_pairs: int  # kept history rows whose (own_id, inf_id) an earlier row already had
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
        if self.repeated_pairs:
            lines.append(
                f"warning: {self.repeated_pairs:,} history rows repeat an earlier row's (own_id, inf_id) pair; "
                "each counts as its own hire in training (merge them first if they are duplicates of one hire)"
            )
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
        if os.path.islink(directory) and not os.path.exists(directory):
            got = f"no such file ({directory!r} is a symbolic link that leads nowhere or loops)"
        elif os.path.exists(directory):
            got = f"no such file ({directory!r} is a file, not the folder holding the CSVs)"
        else:
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
) -> Iterator[Optional[Tuple[Iterator[csv_files.CsvRow], List[str], Dict[str, int]]]]:
    """Open a CSV through the shared reader (data/csv_files.py) and check its header; yields None (problem recorded) if unusable."""
    if not os.path.exists(path):
        problems.add(_missing_file(path, columns))
        yield None
        return
    not_csv = csv_files.not_a_csv(path)
    if not_csv is not None:
        problems.add(Problem(path, None, f"a comma-separated UTF-8 CSV file with columns {', '.join(columns)}", not_csv))
        yield None
        return
    with csv_files.open_text(path) as handle:
        try:
            header, rows = csv_files.read_rows(handle)
        except (UnicodeDecodeError, csv.Error) as err:
            problems.add(_unreadable(path, err, 1))
            yield None
            return
        if header is None:
            problems.add(Problem(path, None, f"a header line with columns {', '.join(columns)}", "an empty file"))
            yield None
            return
        try:
            index = records.check_header(path, header, columns)
        except DataValidationError as err:
            for problem in err.problems:
                problems.add(problem)
            yield None
            return
        yield rows, header, index


def _data_rows(path: str, rows: Iterator[csv_files.CsvRow], width: int, problems: _Problems, progress: Progress) -> Iterator[csv_files.CsvRow]:
    """The rows of the header's width (short ones padded with None, which the parsers report missing); records the others."""
    count, line = 0, 1
    every = PROGRESS_EVERY
    name = os.path.basename(path)
    try:
        for row in rows:
            count, line = row.row, row.line
            if progress is not None and count % every == 0:
                progress(f"{name}: {count:,} rows checked")
            if row.extra:  # classic cause: an unquoted categories value
                expected = f"{width} fields like the header (quote values containing {schema.CATEGORY_SEPARATOR!r})"
                problems.add(Problem(path, ROW_FIELD, expected, f"{width + row.extra} fields", row.row, row.line))
                continue
            yield row
    except (UnicodeDecodeError, csv.Error) as err:
        problems.add(_unreadable(path, err, line + 1))
    if count == 0:
        problems.add(Problem(path, None, "at least one data row", "only the header"))
    if progress is not None:
        progress(f"{name}: {count:,} rows checked, done")


def _scan_influencers(
    path: str, problems: _Problems, out: Optional[CsvWriter], progress: Progress, parsed: Optional[List[records.Influencer]] = None
) -> Tuple[Optional[Set[int]], int]:
    """Check the influencer file; return (ids history may refer to, kept rows); the kept rows go to `parsed` too, if given."""
    first_seen: Dict[int, Tuple[int, int]] = {}  # id -> (row, line) of its kept occurrence
    parseable: Set[int] = set()  # ids of rows rejected for another field (strict mode only)
    with _table(path, schema.INFLUENCER_COLUMNS, problems) as table:
        if table is None:
            return None, 0
        rows, header, index = table
        if out is not None:
            out.writerow(header)
        values = operator.itemgetter(*(index[c] for c in schema.INFLUENCER_COLUMNS))
        parse = records.influencer_from_values
        for row, line, fields, _ in _data_rows(path, rows, len(header), problems, progress):
            try:
                influencer = parse(*values(fields))
            except FieldError as err:
                problems.add_field_error(path, row, line, err)
                if out is None and err.field != schema.INFLUENCER_ID:
                    # Strict mode: don't also flag every history row that names this id.
                    with contextlib.suppress(FieldError):
                        parseable.add(records.parse_count(fields[index[schema.INFLUENCER_ID]], schema.INFLUENCER_ID))
                continue
            seen = first_seen.get(influencer.id)
            if seen is not None:
                raw = records.show(fields[index[schema.INFLUENCER_ID]])
                got = f"{raw}, already used on row {seen[0]} (line {seen[1]})"
                problems.add(Problem(path, schema.INFLUENCER_ID, EXPECT_UNIQUE_ID, got, row, line))
                continue
            first_seen[influencer.id] = (row, line)
            if out is not None:
                out.writerow(fields)
            if parsed is not None:
                parsed.append(influencer)
    return set(first_seen) | parseable, len(first_seen)


def _scan_history(
    path: str, known: Optional[Set[int]], problems: _Problems, out: Optional[CsvWriter], progress: Progress
) -> Tuple[int, int]:
    """Check the history file; return (kept rows, distinct owners, repeated pairs). known=None skips the id check."""
    owners: Set[int] = set()
    pairs = array.array("q")
    kept = 0
    with _table(path, schema.HISTORY_COLUMNS, problems) as table:
        if table is None:
            return 0, 0, 0
        rows, header, index = table
        if out is not None:
            out.writerow(header)
        values = operator.itemgetter(*(index[c] for c in schema.HISTORY_COLUMNS))
        parse = records.interaction_from_values
        check_ids = known is not None
        for row, line, fields, _ in _data_rows(path, rows, len(header), problems, progress):
            try:
                interaction = parse(*values(fields))
            except FieldError as err:
                problems.add_field_error(path, row, line, err)
                continue
            if check_ids and interaction.inf_id not in known:  # type: ignore[operator]
                got = records.show(fields[index[schema.HISTORY_INFLUENCER_ID]])
                problems.add(Problem(path, schema.HISTORY_INFLUENCER_ID, EXPECT_KNOWN_ID, got, row, line))
                continue
            owners.add(interaction.own_id)
            pairs.append(hash((interaction.own_id, interaction.inf_id)))
            kept += 1
            if out is not None:
                out.writerow(fields)
    return kept, len(owners), _repeats(pairs)


def _repeats(keys: "array.array") -> int:
    """How many kept rows repeat an earlier row's (owner, influencer) pair: 8 bytes a row, not a set of tuples."""
    import numpy as np

    values = np.frombuffer(keys, dtype=np.int64) if len(keys) else np.zeros(0, np.int64)
    return int(len(values) - len(np.unique(values)))


def _stop_if_unusable(problems: _Problems, path: str, kept: int) -> None:
    """Drop mode can skip bad rows but not a bad file, nor leave a file empty."""
    if problems.file_level:
        raise problems.error()
    if kept == 0:
        empty = Problem(path, None, "at least one valid data row", "none left after dropping invalid rows")
        raise problems.error([empty])


def read_influencers(path: str, progress: Progress = None) -> List[records.Influencer]:
    """Every row of an influencer CSV, checked by the rules `validate_data` applies (strict: any problem raises, listing them)."""
    problems = _Problems()
    parsed: List[records.Influencer] = []
    _scan_influencers(path, problems, None, progress, parsed)
    if problems.total:
        raise problems.error(advice=None if problems.file_level else "Fix these rows: an influencer file is taken whole or not at all.")
    return parsed


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
        # No influencer at all (only a header, or no file): one problem says so; every history row naming one would only repeat it.
        history, owners, repeated = _scan_history(sources[1], known or None, problems, writers[1], progress)
        if drop_invalid:
            _stop_if_unusable(problems, sources[1], history)
        elif problems.total:
            # --drop-invalid drops bad rows; it cannot mend a missing or unreadable file, so only row problems get the advice.
            raise problems.error(advice=None if problems.file_level else STRICT_ADVICE)
    return ValidationReport(
        influencer_rows=influencers,
        history_rows=history,
        owners=owners,
        repeated_pairs=repeated,
        dropped=dict(problems.dropped),
        influencer_path=targets[0],
        history_path=targets[1],
        examples=list(problems.shown),
    )
