"""Batch scoring input: which owners to score, and which hires to drop.

The owners source is either a history CSV (schema.HISTORY_FILE layout: every
distinct `own_id` is scored; a folder means its historical_data.csv) or an id
list (one owner id per line; an optional first line `own_id` or `owner_id`).
The kind is decided by the first line: a comma-separated header with an
`own_id` column means a history CSV, anything else an id list.

Every input file (the owners, the model's hire table, --exclude-history) is
read by ReadInputs into (shard, item) pairs keyed by owner, so one GroupByKey
brings each shard its owners with all their hires, and nothing is joined in
one worker's memory.
"""

import codecs
import csv
import os
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from data import schema
from data.records import DataValidationError, FieldError, Problem, parse_count
from components.batch_scorer import progress
from components.batch_scorer.records import INVALID_OWNER_ID, OwnerRow, dead_letter

ID_LIST_HEADERS = (schema.OWNER_ID, "owner_id")
# The files the job reads, by kind, and what ReadInputs sends each shard.
OWNERS, TRAIN_HIRES, EXTRA_HIRES = "owners", "train_hires", "extra_hires"
OWNER, HIRES, INVALID, CLAIMED = "owner", "hires", "invalid", "claimed"


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


def read_owners(path: str) -> Iterator[Tuple[str, object]]:
    """(OWNER, (owner_id, line)) at each owner's first sighting in `path`, or (INVALID, dead letter) per bad line.

    Owners repeat in a history CSV; only the first sighting goes on. Each bad
    line becomes its own dead letter; the owners around it go on.
    """
    seen = set()
    for raw, line in read_owner_column(path):
        if raw is None:
            why = f"{INVALID_OWNER_ID}: expected UTF-8 text, got bytes that are not (save the file as UTF-8)"
        else:
            try:
                owner, why = parse_count(raw, schema.OWNER_ID), None  # the data layer's one id rule
            except FieldError as error:
                why = f"{INVALID_OWNER_ID}: expected {error.expected}, got {raw!r}"
        if why is not None:
            yield INVALID, dead_letter("<not UTF-8>" if raw is None else raw, path, line, why)
        elif owner not in seen:
            seen.add(owner)
            yield OWNER, (owner, line)


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


def input_files(owners_path: str, train_hires_path: Optional[str], exclude_history: Optional[str]) -> List[Tuple[str, str]]:
    """(kind, path) of every file the job reads: the owners, the model's own hire table, the user's history CSV."""
    files = [(OWNERS, owners_path)]
    if train_hires_path:
        files.append((TRAIN_HIRES, train_hires_path))
    if exclude_history:
        files.append((EXTRA_HIRES, exclude_history))
    return files


def shard_of(key: int, shards: int) -> int:
    return key % shards


class ReadInputs(beam.DoFn):
    """(kind, path) -> (shard, item) for everything of one file, keyed by the shard of the owner it concerns.

    Each file is read line by line in one call (not split), so each bad owner
    line keeps its file and line number for its dead letter (sharded by line
    number). The owners file also tells every shard how many owners and bad
    lines it was sent (CLAIMED), so the shard can prove that none was lost and
    every shard runs, even one that was sent nothing.
    """

    def __init__(self, shards: int, progress_dir: Optional[str] = None):
        self._shards = shards
        self._progress_dir = progress_dir

    def process(self, element: Tuple[str, str]):
        kind, path = element
        if kind == OWNERS:
            yield from self._owners(path)
        elif kind == TRAIN_HIRES:
            for line in _text_lines(path):
                owner, hires = parse_history_asset_line(line)
                yield shard_of(owner, self._shards), (HIRES, owner, hires)
        else:
            for owner, influencer in read_hire_pairs(path):
                yield shard_of(owner, self._shards), (HIRES, owner, (influencer,))

    def _owners(self, path: str):
        sent = [0] * self._shards
        read = progress.CountFile(self._progress_dir, progress.READ)
        for kind, item in read_owners(path):
            shard = shard_of(item[0] if kind == OWNER else item["line"], self._shards)
            sent[shard] += 1
            read.add(1)
            yield shard, ((OWNER, *item, path) if kind == OWNER else (INVALID, item))
        read.flush()
        progress.CountFile(self._progress_dir, progress.READ_DONE).add(1)
        for shard, count in enumerate(sent):
            yield shard, (CLAIMED, count)


def _text_lines(path: str) -> Iterator[str]:
    for _, text in _lines(path):
        if text and text.strip():
            yield text


def parse_history_asset_line(line: str) -> Tuple[int, Tuple[int, ...]]:
    """`own_id<TAB>inf,inf,...` (models/owner_tables.py) -> (owner, hires)."""
    owner, _, hires = line.partition("\t")
    return int(owner), tuple(int(i) for i in hires.split(",") if i)


class ShardInput(NamedTuple):
    """What one shard was sent: its owners (each with every hire to drop), its bad lines, and how many of both it was promised."""

    owners: List[OwnerRow]
    invalid: List[dict]
    claimed: int


def shard_input(items: Iterable[tuple]) -> ShardInput:
    """ReadInputs' items of one shard -> its owners (by id, first sighting), the hires of each, the dead letters."""
    sightings: Dict[int, Tuple[int, str]] = {}
    hires: Dict[int, set] = {}
    invalid, claimed = [], 0
    for item in items:
        if item[0] == OWNER:
            _, owner, line, path = item
            sightings[owner] = min(sightings.get(owner, (line, path)), (line, path))  # read_owners sends each owner once
        elif item[0] == HIRES:
            hires.setdefault(item[1], set()).update(item[2])
        elif item[0] == INVALID:
            invalid.append(item[1])
        else:
            claimed += item[1]
    owners = [OwnerRow(owner, path, line, tuple(sorted(hires.get(owner, ())))) for owner, (line, path) in sorted(sightings.items())]
    return ShardInput(owners, sorted(invalid, key=lambda letter: (letter["file"], letter["line"])), claimed)
