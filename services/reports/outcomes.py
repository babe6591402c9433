"""How a department answered one requirement, as the department report counts it.

Whether an answer was in time is decided once, by the feedback context
(`services.feedback.status.status`, in `ResponseStatus` words, which the case view uses
too); the report only names its columns for its readers, one per status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from services.feedback.status import ResponseRow, ResponseStatus, status

Outcome = Literal["on_time", "late", "failed", "unanswered", "pending"]
OUTCOMES: tuple[Outcome, ...] = ("on_time", "late", "failed", "unanswered", "pending")
# The report's column for each status (its published CSV and JSON names).
COLUMN: dict[ResponseStatus, Outcome] = {
    ResponseStatus.done: "on_time",
    ResponseStatus.done_late: "late",
    ResponseStatus.failed: "failed",
    ResponseStatus.overdue: "unanswered",
    ResponseStatus.pending: "pending",
}

__all__ = ["OUTCOMES", "Outcome", "ResponseRow", "classify", "response_seconds"]


def classify(row: ResponseRow, as_of: datetime) -> Outcome:
    """The report's column for the row's status at `as_of`."""
    return COLUMN[status(row, as_of)]


def response_seconds(row: ResponseRow) -> float | None:
    """From requirement to answer; an answer stamped before it (clock skew) counts as 0."""
    if row.done_at is None or row.required_at is None:
        return None
    return max(0.0, (row.done_at - row.required_at).total_seconds())
