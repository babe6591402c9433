"""Pure: did a department answer a requirement in time. The one rule, in one vocabulary,
for every reader of the tracker's `responses` table (the case view, the reports).

The reports' older words (services/reports/domain.py `classify`, `Outcome`) map one to
one, given the same row and the same `now` (their `as_of`):

    on_time    -> ResponseStatus.done
    late       -> ResponseStatus.done_late
    failed     -> ResponseStatus.failed
    unanswered -> ResponseStatus.overdue
    pending    -> ResponseStatus.pending
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ResponseStatus(StrEnum):
    """Where one department's answer to one requirement stands; the values are the API's."""

    done = "done"  # done by the deadline (or done before any deadline was read)
    done_late = "done_late"  # done, after the deadline
    failed = "failed"  # the department reported it could not, and has not done it since
    overdue = "overdue"  # not done and past the deadline (or already claimed overdue)
    pending = "pending"  # not done, not yet due


@dataclass(frozen=True, kw_only=True)
class ResponseRow:
    """The tracker's record of one requirement (apply or lift) and its answer: one row of
    `responses`. `required_at` and `due_at` are None while an answer has come in before
    the tracker read the event that asks for it; `overdue_at` is when the tracker claimed
    the row overdue. Readers select the columns they need: the rest default to None."""

    case_id: str
    department: str
    measure: str
    action: str
    required_at: datetime | None
    due_at: datetime | None
    done_at: datetime | None
    failed_at: datetime | None
    overdue_at: datetime | None = None
    reference: str | None = None
    error: str | None = None


def status(row: ResponseRow, now: datetime) -> ResponseStatus:
    """Done counts whenever it came: on time when by the deadline (the deadline itself is
    on time). Otherwise a reported failure, else overdue once the deadline has passed at
    `now` or the tracker has claimed it overdue, else pending."""
    if row.done_at is not None:
        if row.due_at is not None and row.done_at > row.due_at:
            return ResponseStatus.done_late
        return ResponseStatus.done
    if row.failed_at is not None:
        return ResponseStatus.failed
    if (row.due_at is not None and row.due_at < now) or row.overdue_at is not None:
        return ResponseStatus.overdue
    return ResponseStatus.pending
