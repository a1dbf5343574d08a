"""What flows through batch scoring: owner rows, scored rows, dead-letter records, counter names, defined once."""

from typing import Dict, List, NamedTuple, Sequence, Tuple

INVALID_OWNER_ID = "invalid owner id"
UNKNOWN_OWNER = "unknown owner"
INFERENCE_FAILED = "inference failed"
RETRIEVAL_FAILED = "retrieval failed"


# Output file formats of batch scoring (output.py writes them).
FORMATS = ("jsonl", "csv", "tfrecord", "parquet")
# A scored row, in every output format: the owner and its top-k, best first.
OWNER_COLUMN, IDS_COLUMN, SCORES_COLUMN = "owner_id", "influencer_ids", "scores"
# With --explain (models/explain.py), per result in the same order: EXPLAINED_HIRES past hires (-1 padding) and
# their shares of its score, flat (result 1's hires, then result 2's, ...), and the towers' share.
HIRE_IDS_COLUMN, HIRE_SHARES_COLUMN, TOWER_SHARES_COLUMN = "explain_hire_ids", "explain_hire_shares", "tower_shares"
# Each column's kind: one int, a list of ints, a list of floats.
INT, INTS, FLOATS = "int", "ints", "floats"
COLUMNS = ((OWNER_COLUMN, INT), (IDS_COLUMN, INTS), (SCORES_COLUMN, FLOATS))
EXPLAIN_COLUMNS = ((HIRE_IDS_COLUMN, INTS), (HIRE_SHARES_COLUMN, FLOATS), (TOWER_SHARES_COLUMN, FLOATS))


def columns(explain: bool) -> Tuple[Tuple[str, str], ...]:
    """The output columns of a run, in order."""
    return COLUMNS + (EXPLAIN_COLUMNS if explain else ())


class OwnerRow(NamedTuple):
    """One owner to score, with where it was first seen and the hires to drop."""

    owner_id: int
    file: str
    line: int
    exclude: Tuple[int, ...] = ()


def dead_letter(raw: str, file: str, line: int, reason: str) -> dict:
    """A dead-letter record: the raw value, where it came from and why it was not scored."""
    return {"owner": raw, "file": file, "line": line, "reason": reason}


def scored_row(owner_id: int, influencer_ids: Sequence[int], scores: Sequence[float]) -> Dict[str, object]:
    """One scored owner as the output writers take it."""
    ids: List[int] = [int(i) for i in influencer_ids]
    return {OWNER_COLUMN: int(owner_id), IDS_COLUMN: ids, SCORES_COLUMN: [float(s) for s in scores]}
