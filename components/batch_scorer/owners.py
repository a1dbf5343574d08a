"""Batch scoring input: which owners to score, and which hires to drop.

The owners source is either a history CSV (schema.HISTORY_FILE layout: every
distinct `own_id` is scored; a folder means its historical_data.csv) or an id
list (one owner id per line; an optional first line `own_id` or `owner_id`).
The kind is decided by the first line: a comma-separated header with an
`own_id` column means a history CSV, anything else an id list.

Files are read line by line in one DoFn (not split), so each bad row keeps its
file and line number for the dead-letter output; parsing and everything after
it fan out.
"""

import codecs
import csv
import os
from typing import Iterator, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from data import schema
from data.records import DataValidationError, FieldError, Problem, parse_count
from components.batch_scorer import progress
from components.batch_scorer.records import INVALID_OWNER_ID, METRICS_NAMESPACE, OwnerRow, dead_letter

ID_LIST_HEADERS = (schema.OWNER_ID, "owner_id")


def resolve_owners_path(path: str) -> str:
    """A folder means its history CSV."""
    if os.path.isdir(path):
        return os.path.join(path, schema.HISTORY_FILE)
    return path


def _lines(path: str) -> Iterator[Tuple[int, Optional[str]]]:
    """(line number, text without its line break) of a file; text None where the line is not UTF-8.

    Decoding per line keeps one bad line from failing the whole file; a UTF-8
    byte-order mark before the first line is dropped.
    """
    with FileSystems.open(path) as handle:
        for number, raw in enumerate(iter(handle.readline, b""), 1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield number, None


def _cells(text: str) -> list:
    return [c.strip() for c in next(csv.reader([text]), [])]


def _header(path: str) -> list:
    for _, text in _lines(path):
        return _cells(text) if text and text.strip() else []
    return []


def detect_format(path: str) -> str:
    """'history' (a CSV with an own_id column) or 'ids' (one id per line).

    Raises DataValidationError for a multi-column header without own_id (neither kind).
    """
    columns = _header(path)
    if len(columns) > 1:
        if schema.OWNER_ID not in columns:
            raise DataValidationError(
                [Problem(path, schema.OWNER_ID, f"a history CSV with an {schema.OWNER_ID} column, or one owner id per line", f"header {columns}", line=1)]
            )
        return "history"
    return "ids"


def check_hire_csv(path: str) -> None:
    """--exclude-history must be a CSV with own_id and inf_id columns (checked before the pipeline starts)."""
    columns = _header(path)
    missing = [c for c in (schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID) if c not in columns]
    if missing:
        raise DataValidationError([Problem(path, ", ".join(missing), f"a history CSV with columns {schema.OWNER_ID}, {schema.HISTORY_INFLUENCER_ID}", f"header {columns}", line=1)])


def read_owner_column(path: str, column: str = schema.OWNER_ID) -> Iterator[Tuple[Optional[str], int]]:
    """(raw value, line number) of a column of a CSV, or of every line of an id list; None for a non-UTF-8 line."""
    history = detect_format(path) == "history"
    position = None
    for number, text in _lines(path):
        if text is None:
            yield None, number
            continue
        if not text.strip():
            continue
        if history:
            cells = _cells(text)
            if position is None:
                position = cells.index(column)
                continue
            yield (cells[position] if position < len(cells) else ""), number
        elif not (number == 1 and text.strip() in ID_LIST_HEADERS):
            yield text.strip(), number


class ReadOwners(beam.DoFn):
    """File path -> ('valid', (owner_id, (file, line))) once per owner, or ('invalid', dead letter).

    Owners repeat in a history CSV; only the first sighting per file goes on.
    Each bad line becomes its own dead letter; the owners around it go on.
    """

    def __init__(self, progress_dir: Optional[str] = None):
        self._invalid = Metrics.counter(METRICS_NAMESPACE, "invalid_owner_ids")
        self._read = Metrics.counter(METRICS_NAMESPACE, "owners_read")  # valid owners are counted once deduplicated
        self._progress_dir = progress_dir

    def process(self, path: str):
        seen = set()
        read = progress.CountFile(self._progress_dir, progress.READ)
        yield from self._owners(path, seen, read)
        read.flush()
        progress.CountFile(self._progress_dir, progress.READ_DONE).add(1)

    def _owners(self, path: str, seen: set, read: "progress.CountFile"):
        for raw, line in read_owner_column(path):
            if raw is None:
                why = f"{INVALID_OWNER_ID}: expected UTF-8 text, got bytes that are not (save the file as UTF-8)"
            else:
                try:
                    owner, why = parse_count(raw, schema.OWNER_ID), None  # the data layer's one id rule
                except FieldError as error:
                    why = f"{INVALID_OWNER_ID}: expected {error.expected}, got {raw!r}"
            if why is not None:
                self._invalid.inc()
                self._read.inc()
                read.add(1)
                yield beam.pvalue.TaggedOutput("invalid", dead_letter("<not UTF-8>" if raw is None else raw, path, line, why))
                continue
            if owner not in seen:
                seen.add(owner)
                read.add(1)
                yield owner, (path, line)


def read_hire_pairs(path: str) -> Iterator[Tuple[int, int]]:
    """(own_id, inf_id) of a history CSV; rows with a bad id are skipped (they are not hires we can drop)."""
    columns = None
    for _, text in _lines(path):
        if text is None or not text.strip():
            continue
        cells = _cells(text)
        if columns is None:
            missing = {schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID} - set(cells)
            if missing:
                raise DataValidationError([Problem(path, ", ".join(sorted(missing)), f"a history CSV with columns {schema.OWNER_ID}, {schema.HISTORY_INFLUENCER_ID}", f"header {cells}", line=1)])
            columns = {name: cells.index(name) for name in (schema.OWNER_ID, schema.HISTORY_INFLUENCER_ID)}
            continue
        try:
            yield tuple(parse_count(cells[position], name) for name, position in columns.items())
        except (ValueError, IndexError):
            continue


def parse_history_asset_line(line: str) -> Tuple[int, Tuple[int, ...]]:
    """`own_id<TAB>inf,inf,...` (models/owner_tables.py) -> (owner, hires)."""
    owner, _, hires = line.partition("\t")
    return int(owner), tuple(int(i) for i in hires.split(",") if i)


class ReadOwnersAndHires(beam.PTransform):
    """The owners to score, each with the influencers to leave out of its results.

    Outputs 'main' (OwnerRow) and 'invalid' (dead letters). Hires come from the
    model's own train-hire table (what `recommend` excludes) and, if given, a
    history CSV; both are joined to the owners with a CoGroupByKey, so neither
    side has to fit in one worker's memory.
    """

    def __init__(self, owners_path: str, train_hires_path: Optional[str], exclude_history: Optional[str], progress_dir: Optional[str] = None):
        super().__init__()
        self._progress_dir = progress_dir
        self._owners = owners_path
        self._train_hires = train_hires_path
        self._exclude = exclude_history

    def expand(self, begin):
        parsed = (
            begin
            | "OwnerFiles" >> beam.Create([self._owners])
            | "ReadOwners" >> beam.ParDo(ReadOwners(self._progress_dir)).with_outputs("invalid", main="valid")
        )
        owners = parsed.valid | "FirstSighting" >> beam.CombinePerKey(min)
        sources = {"owner": owners}
        if self._train_hires:
            sources["hires"] = (
                begin
                | "ReadTrainHires" >> beam.io.ReadFromText(self._train_hires)
                | "ParseTrainHires" >> beam.Map(parse_history_asset_line)
            )
        if self._exclude:
            sources["extra"] = (
                begin
                | "ExcludeFiles" >> beam.Create([self._exclude])
                | "ReadExcludePairs" >> beam.FlatMap(read_hire_pairs)
                | "ExcludeAsList" >> beam.Map(lambda pair: (pair[0], (pair[1],)))
            )
        rows = sources | "JoinHires" >> beam.CoGroupByKey() | "ToOwnerRows" >> beam.FlatMap(_owner_row)
        return {"main": rows, "invalid": parsed.invalid}


def _owner_row(item) -> Iterator[OwnerRow]:
    owner, groups = item
    sightings = list(groups["owner"])
    if not sightings:
        return
    exclude = set()
    for key in ("hires", "extra"):
        for hires in groups.get(key, ()):
            exclude.update(hires)
    path, line = sightings[0]
    yield OwnerRow(owner, path, line, tuple(sorted(exclude)))
