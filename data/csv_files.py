"""How a seed CSV is read, defined once: validation (data/validate.py) and ExampleGen read through here.

The dialect: UTF-8 with or without a byte-order mark, LF or CRLF line ends,
RFC 4180 quoting (a quoted field may hold commas and line breaks), blank lines
skipped, header names stripped of surrounding spaces. What is not a CSV of
that kind (a folder, a compressed file, another delimiter) is named as such
before any row is read.
"""

import codecs
import csv
import io
import itertools
import os
from typing import IO, Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

ENCODING = "utf-8-sig"  # Excel, which made the seed data, writes a BOM that would hide the first column
_MAGIC = ((b"\x1f\x8b", "a gzip-compressed file (decompress it first)"), (b"PK\x03\x04", "a zip archive (extract the CSV first)"),
          (b"\xff\xfe", "UTF-16 text (save the CSV as UTF-8)"), (b"\xfe\xff", "UTF-16 text (save the CSV as UTF-8)"))
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "'|' characters"}

Opener = Callable[[str, str], IO[bytes]]


class CsvRow(NamedTuple):
    row: int  # 1-based data row (blank lines not counted)
    line: int  # line of the file where the row ends (a quoted field may span lines)
    fields: List[Optional[str]]  # as many as the header; None for the fields a short row lacks
    extra: int  # fields beyond the header's width (such a row is malformed)


def _open_binary(path: str, mode: str) -> IO[bytes]:
    return open(path, mode)


def not_a_csv(path: str, opener: Opener = _open_binary, isdir: Callable[[str], bool] = os.path.isdir) -> Optional[str]:
    """What the file is instead of a comma-separated UTF-8 text file, or None when it may be one."""
    if isdir(path):
        return "a directory, not a file"
    with opener(path, "rb") as handle:
        head = handle.read(4096)
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip(codecs.BOM_UTF8.decode())
    if "," not in first:
        for delimiter, name in _OTHER_DELIMITERS.items():
            if delimiter in first:
                return f"fields separated by {name}, not commas (save it as comma-separated)"
    return None


def open_text(path: str, opener: Opener = _open_binary) -> IO[str]:
    """The file as text in the product's dialect (the csv module does the line ends and quoting)."""
    return io.TextIOWrapper(opener(path, "rb"), encoding=ENCODING, newline="")


def _blank(fields: List[str]) -> bool:
    return not fields or (len(fields) == 1 and not fields[0].strip())


def _padded(fields: List[str], width: int) -> List[Optional[str]]:
    return list(fields[:width]) + [None] * max(0, width - len(fields))


def read_rows(handle: IO[str]) -> Tuple[Optional[List[str]], Iterator[CsvRow]]:
    """(header fields, or None for an empty file; the data rows). Decoding and CSV errors surface while iterating."""
    reader = csv.reader(handle)
    header = next(reader, None)
    width = len(header or ())

    def rows() -> Iterator[CsvRow]:
        row = 0
        for fields in reader:
            if _blank(fields):
                continue
            row += 1
            yield CsvRow(row, reader.line_num, _padded(fields, width), max(0, len(fields) - width))

    return header, rows()


def read_shard(handle: IO[str], shard: int, shards: int) -> Tuple[Optional[List[str]], Iterator[List[Optional[str]]]]:
    """(header fields; the fields of every `shards`-th record from record `shard` on, padded as in `read_rows`).

    `shards` readers of one file, shard 0 to shards-1, share its rows between them, each exactly once. Each
    parses the whole file (the csv module, in C: about 0.4 us a row) rather than a byte range of it, because
    a quoted field may hold line breaks: a row's start cannot be told from the bytes around an offset.
    """
    reader = csv.reader(handle)
    header = next(reader, None)
    width = len(header or ())
    return header, (_padded(fields, width) for fields in itertools.islice(reader, shard, None, shards) if not _blank(fields))


def header_names(header: Sequence[str]) -> List[str]:
    """Column names as the product matches them: surrounding spaces dropped."""
    return [name.strip() for name in header]
