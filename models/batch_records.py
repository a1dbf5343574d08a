"""What flows through batch scoring: owner rows, dead-letter records, counter names, defined once."""

from typing import NamedTuple, Tuple

METRICS_NAMESPACE = "batch_score"
INVALID_OWNER_ID = "invalid owner id"
UNKNOWN_OWNER = "unknown owner"
INFERENCE_FAILED = "inference failed"
RETRIEVAL_FAILED = "retrieval failed"


class OwnerRow(NamedTuple):
    """One owner to score, with where it was first seen and the hires to drop."""

    owner_id: int
    file: str
    line: int
    exclude: Tuple[int, ...] = ()


def dead_letter(raw: str, file: str, line: int, reason: str) -> dict:
    """A dead-letter record: the raw value, where it came from and why it was not scored."""
    return {"owner": raw, "file": file, "line": line, "reason": reason}
