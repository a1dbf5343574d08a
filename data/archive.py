"""Reading a public dataset's tables from its zip or unpacked folder, shared by the converters."""

import contextlib
import csv
import os
import zipfile
from typing import IO, Iterator, List, Optional

import numpy as np
import pandas as pd


class Archive:
    """Files of a zip or folder by base name, looked up at the top level or one folder down.

    `what` names the dataset in messages ("the anime data").
    """

    def __init__(self, src: str, what: str) -> None:
        self.src = src
        if os.path.isdir(src):
            self._zip = None
            paths = sorted(os.listdir(src))
            paths += [os.path.join(d, e) for d in paths if os.path.isdir(os.path.join(src, d))
                      for e in sorted(os.listdir(os.path.join(src, d)))]
            self._paths = [p for p in paths if os.path.isfile(os.path.join(src, p))]
        elif os.path.isfile(src):
            if not zipfile.is_zipfile(src):
                raise ValueError(f"{src}: expected a zip file or a folder with {what}")
            with zipfile.ZipFile(src) as z:
                self._paths = [n for n in z.namelist() if not n.endswith("/") and n.rstrip("/").count("/") <= 1]
            self._zip = src
        else:
            raise FileNotFoundError(f"{src}: no such zip file or folder (expected {what})")

    def find(self, name: str) -> Optional[str]:
        """Shallowest path whose base name is `name`."""
        hits: List[str] = sorted((p for p in self._paths if os.path.basename(p) == name),
                                 key=lambda p: (p.count("/") + p.count(os.sep), p))
        return hits[0] if hits else None

    @contextlib.contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """Binary stream of `name` (zip members are read in place, never extracted)."""
        path = self.find(name)
        if self._zip is None:
            with open(os.path.join(self.src, path), "rb") as handle:
                yield handle
        else:
            with zipfile.ZipFile(self._zip) as z, z.open(path) as handle:
                yield handle


def read_table(source: Archive, name: str, sep: str, columns: tuple, text_columns: tuple = (), encoding: str = "utf-8") -> pd.DataFrame:
    """The needed columns of one table: `text_columns` as strings, the others as checked integers.

    Tab-separated files are read unquoted (the public .dat files quote nothing), others as quoted CSV.
    """
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    with source.open(name) as handle:
        try:
            frame = pd.read_csv(handle, sep=sep, quoting=quoting, usecols=lambda c: c in columns, encoding=encoding,
                                dtype={c: str for c in text_columns}, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise ValueError(f"{source.src}: cannot parse {name}: {err}") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source.src}: {name} lacks column(s) {missing}; expected {list(columns)}")
    for column in columns:
        if column not in text_columns:
            frame[column] = integer_column(frame[column], source.src, name, column)
    return frame


def integer_column(values: pd.Series, src: str, name: str, column: str) -> pd.Series:
    """Integer column or a ValueError naming the file and column."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | (numbers != np.floor(numbers))
    if bad.any():
        raise ValueError(f"{src}: {name} column {column} must hold integers, found {values[bad].iloc[0]!r}")
    return numbers.astype(np.int64)
