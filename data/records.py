"""Parse and check one seed-CSV row: the single place these rules live.

Validation uses it now and the Beam ExampleGen will call it per row later, so
a row that passes validation is exactly a row the pipeline can ingest.

Decisions (documented here because callers rely on them):
- Integers are ASCII digits with an optional sign and surrounding spaces.  An
  integral float spelling such as "12.0" is accepted, because pandas and
  spreadsheets write integer columns that way once a column held a blank;
  "1.5", "1e3", "1_000" and "" are rejected.  Values must fit in int64
  (tf.train.Example's integer type).
- Ids and follower counts must be >= 0.  Zero is a usable key; negatives are
  rejected because -1 is the usual "unknown" sentinel and must not become a key.
- Price and sentiment must lie in schema.UNIT_INTERVAL (inclusive); NaN and
  inf fail that check.
- Categories are split on schema.CATEGORY_SEPARATOR, labels stripped and blank
  labels dropped; a value with no label left is rejected.
- A missing value (None, e.g. from csv.DictReader on a short row) is a
  FieldError, never a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from data import schema
from data.errors import UserError

# How many problems an error message lists; the rest are only counted.
MAX_SHOWN = 20
_INT64_MAX = 2**63 - 1
_UNIT_LO, _UNIT_HI = schema.UNIT_INTERVAL

EXPECT_NON_NEGATIVE = "a non-negative integer"
EXPECT_STAR = f"an integer from {schema.STAR_MIN} to {schema.STAR_MAX}"
EXPECT_UNIT = f"a number from {_UNIT_LO:g} to {_UNIT_HI:g}"
EXPECT_CATEGORIES = f"one or more category labels separated by {schema.CATEGORY_SEPARATOR!r}"

# Digits, optional sign, optional ".000" tail: the integral spellings we accept.
_INT_RE = re.compile(r"\s*([+-]?\d+)(?:\.0*)?\s*", re.ASCII)


class Influencer(NamedTuple):
    id: int
    insta_follower: int
    tiktok: int
    youtube: int
    price_normalized: float
    categories: Tuple[str, ...]


class Interaction(NamedTuple):
    own_id: int
    inf_id: int
    star_rating: int
    sentiment_rating: float


# Field names are identifiers above (for typed attribute access); fail at import
# if they ever drift from the schema constants.
assert Influencer._fields == schema.INFLUENCER_COLUMNS, Influencer._fields
assert Interaction._fields == schema.HISTORY_COLUMNS, Interaction._fields


def show(value: Optional[str], limit: int = 60) -> str:
    """Render a raw CSV value for a message: quoted, truncated, None spelled out."""
    if value is None:
        return "a missing value"
    return repr(value) if len(value) <= limit else repr(value[:limit]) + "..."


class FieldError(ValueError):
    """One field of one row is invalid; `got` is the raw value (None if missing)."""

    def __init__(self, field: str, expected: str, got: Optional[str]) -> None:
        super().__init__(f"field {field}: expected {expected}, got {show(got)}")
        self.field, self.expected, self.got = field, expected, got

    def __reduce__(self):  # keep picklable (Beam ships exceptions between workers)
        return type(self), (self.field, self.expected, self.got)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One validation finding; row/line are None for whole-file problems."""

    path: str
    field: Optional[str]
    expected: str
    got: str  # already formatted for display
    row: Optional[int] = None  # 1-based data row (blank lines not counted)
    line: Optional[int] = None  # 1-based line in the file (the header is line 1)

    def __str__(self) -> str:
        where = self.path
        if self.row is not None:
            where += f" row {self.row} (line {self.line})"
        elif self.line is not None:
            where += f" line {self.line}"
        if self.field is not None:
            where += f", field {self.field}"
        return f"{where}: expected {self.expected}, got {self.got}"


class DataValidationError(UserError):
    """Input data is unusable; lists up to MAX_SHOWN problems and counts the rest."""

    def __init__(self, problems: Sequence[Problem], total: Optional[int] = None, advice: str = "") -> None:
        self.problems: List[Problem] = list(problems)
        self.total = len(self.problems) if total is None else total
        self.advice = advice
        shown = self.problems[:MAX_SHOWN]
        head = f"{self.total} data problem{'s' if self.total != 1 else ''} found"
        lines = [head + (f" (showing the first {len(shown)}):" if self.total > len(shown) else ":")]
        lines += [f"  - {p}" for p in shown]
        if self.total > len(shown):
            lines.append(f"  ... and {self.total - len(shown)} more")
        if advice:
            lines.append(advice)
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return type(self), (self.problems, self.total, self.advice)


def _int(
    value: Optional[str], field: str, expected: str = EXPECT_NON_NEGATIVE, lo: int = 0, hi: int = _INT64_MAX
) -> int:
    """Parse an integer in [lo, hi]; the defaults are the id/follower-count rule."""
    # Fast path for plain digits: no regex, no exception on the happy path.
    if isinstance(value, str) and value.isdigit() and value.isascii():
        number = int(value)
    else:
        match = _INT_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise FieldError(field, expected, value)
        number = int(match.group(1))
    if lo <= number <= hi:
        return number
    if not -_INT64_MAX - 1 <= number <= _INT64_MAX:
        expected = f"{expected} (this one does not fit a 64-bit integer: at most {_INT64_MAX})"
    raise FieldError(field, expected, value)


def parse_count(value: Optional[str], field: str) -> int:
    """Parse one id or follower-count value by the rule above; raises FieldError."""
    return _int(value, field)


def _unit(value: Optional[str], field: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]  # None -> TypeError
    except (TypeError, ValueError):
        raise FieldError(field, EXPECT_UNIT, value) from None
    # The comparison also rejects NaN; float() would accept "0_5" silently.
    if _UNIT_LO <= number <= _UNIT_HI and "_" not in value:  # type: ignore[operator]
        return number
    raise FieldError(field, EXPECT_UNIT, value)


def _categories(value: Optional[str], field: str) -> Tuple[str, ...]:
    labels: Tuple[str, ...] = ()
    if isinstance(value, str):
        labels = tuple(label for label in (part.strip() for part in value.split(schema.CATEGORY_SEPARATOR)) if label)
    if labels:
        return labels
    raise FieldError(field, EXPECT_CATEGORIES, value)


def influencer_from_values(
    id_: Optional[str],
    insta: Optional[str],
    tiktok: Optional[str],
    youtube: Optional[str],
    price: Optional[str],
    categories: Optional[str],
) -> Influencer:
    """Parse raw values given in schema.INFLUENCER_COLUMNS order (fast positional form)."""
    return Influencer(
        _int(id_, schema.INFLUENCER_ID),
        _int(insta, schema.INSTA_FOLLOWERS),
        _int(tiktok, schema.TIKTOK_FOLLOWERS),
        _int(youtube, schema.YOUTUBE_FOLLOWERS),
        _unit(price, schema.PRICE),
        _categories(categories, schema.CATEGORIES),
    )


def interaction_from_values(
    own_id: Optional[str], inf_id: Optional[str], star: Optional[str], sentiment: Optional[str]
) -> Interaction:
    """Parse raw values given in schema.HISTORY_COLUMNS order (fast positional form)."""
    return Interaction(
        _int(own_id, schema.OWNER_ID),
        _int(inf_id, schema.HISTORY_INFLUENCER_ID),
        _int(star, schema.STAR_RATING, EXPECT_STAR, schema.STAR_MIN, schema.STAR_MAX),
        _unit(sentiment, schema.SENTIMENT),
    )


def parse_influencer(row: Mapping[str, Optional[str]]) -> Influencer:
    """Parse one influencer CSV row keyed by column name; raises FieldError."""
    return influencer_from_values(*(row.get(column) for column in schema.INFLUENCER_COLUMNS))


def parse_history(row: Mapping[str, Optional[str]]) -> Interaction:
    """Parse one history CSV row keyed by column name; raises FieldError."""
    return interaction_from_values(*(row.get(column) for column in schema.HISTORY_COLUMNS))


def _closest(column: str, candidates: Sequence[str], only_missing: bool) -> Optional[str]:
    """Best guess at what `column` was renamed to, or None."""
    if not candidates:
        return None
    squash = {c: re.sub(r"[\s_\-]", "", c.lower()) for c in candidates}
    target = re.sub(r"[\s_\-]", "", column.lower())
    for candidate, key in squash.items():  # "ID" for "id", "Star Rating" for "star_rating"
        if key == target:
            return candidate
    for candidate, key in squash.items():  # "price" for "price_normalized"; short keys match too much
        if min(len(key), len(target)) >= 4 and (key in target or target in key):
            return candidate
    lowered = {c.lower(): c for c in candidates}
    match = difflib.get_close_matches(column.lower(), list(lowered), n=1, cutoff=0.6)
    if match:
        return lowered[match[0]]
    # One column missing and one unexplained column present: almost surely a rename.
    return candidates[0] if only_missing and len(candidates) == 1 else None


def check_header(path: str, header: Sequence[str], required: Sequence[str]) -> Dict[str, int]:
    """Map each required column to its index in `header` (surrounding spaces ignored).

    Raises DataValidationError naming the file, each missing or repeated
    column, the required columns, and a likely rename when there is one.
    """
    names = [name.strip() for name in header]
    index: Dict[str, int] = {}
    problems: List[Problem] = []
    missing: List[str] = []
    for column in required:
        hits = [i for i, name in enumerate(names) if name == column]
        if len(hits) == 1:
            index[column] = hits[0]
        elif hits:
            problems.append(Problem(path, column, f"the column {column!r} once", f"it {len(hits)} times in the header"))
        else:
            missing.append(column)
    unexplained = [name for name in names if name not in required]
    for column in missing:
        guess = _closest(column, unexplained, only_missing=len(missing) == 1)
        got = f"columns {', '.join(map(repr, names)) or 'none'}"
        if guess is not None:
            got += f"; did you mean {guess!r}? (rename it to {column!r})"
        problems.append(Problem(path, column, f"a column named {column!r} (required: {', '.join(required)})", got))
    if problems:
        raise DataValidationError(problems)
    return index
