"""Warning talks (警示约谈) and their rectification deadlines (限时整改): what a talk may
become, and what its rectification means on a given day."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from services.errors import InvalidInput
from services.townships.domain.inputs import (
    NotYours,
    RectificationReport,
    StateError,
    TalkDecision,
    TalkRequest,
)

# --- warning talks ------------------------------------------------------------------


class TalkStatus(StrEnum):
    requested = "requested"
    approved = "approved"
    declined = "declined"
    rectified = "rectified"


class Rectification(StrEnum):
    """Where a talk's rectification stands on a day."""

    none = "none"  # no deadline: not (yet) approved, or declined
    open = "open"  # deadline not passed, not reported done
    overdue = "overdue"  # deadline passed, not reported done
    met = "met"  # reported done by the deadline
    met_late = "met_late"  # reported done after the deadline


@dataclass(frozen=True)
class Talk:
    talk_id: str
    township: str
    reason: str
    cases: tuple[str, ...]
    requested_by: str
    requested_at: datetime
    status: TalkStatus = TalkStatus.requested
    decided_by: str | None = None
    decided_at: datetime | None = None
    talk_on: date | None = None
    rectify_by: date | None = None
    decision_reason: str | None = None
    rectified_on: date | None = None
    rectification_summary: str | None = None
    rectified_by: str | None = None


def new_talk(
    talk_id: str, request: TalkRequest, *, by: str, at: datetime, known: Iterable[str]
) -> Talk:
    if request.township not in set(known):
        raise InvalidInput("township", f"unknown township {request.township!r}")
    return Talk(talk_id, request.township, request.reason, tuple(request.cases), by, at)


def decide_talk(talk: Talk, decision: TalkDecision, *, by: str, at: datetime, today: date) -> Talk:
    """requested → approved (talk date and deadline) or declined (reason)."""
    if talk.status is not TalkStatus.requested:
        raise StateError(
            f"talk {talk.talk_id} is {talk.status}; only a requested talk can be decided"
        )
    declined = decision.decision == "decline"
    if declined:
        _check_declining(decision)
    else:
        _check_approving(decision, today)
    return replace(  # a declined talk has no date nor deadline: both were refused above
        talk,
        status=TalkStatus.declined if declined else TalkStatus.approved,
        decided_by=by,
        decided_at=at,
        talk_on=decision.talk_on,
        rectify_by=decision.rectify_by,
        decision_reason=decision.reason or None,
    )


def _check_declining(decision: TalkDecision) -> None:
    if not decision.reason.strip():
        raise InvalidInput("reason", "required when declining a talk")
    if decision.talk_on is not None or decision.rectify_by is not None:
        field = "talk_on" if decision.talk_on is not None else "rectify_by"
        raise InvalidInput(field, "only an approved talk has a date and a deadline")


def _check_approving(decision: TalkDecision, today: date) -> None:
    if decision.talk_on is None:
        raise InvalidInput("talk_on", "required when approving: the day of the talk")
    if decision.rectify_by is None:
        raise InvalidInput("rectify_by", "required when approving: the rectification deadline")
    if decision.talk_on < today:
        raise InvalidInput("talk_on", f"{decision.talk_on} has passed (today is {today})")
    if decision.rectify_by <= decision.talk_on:
        raise InvalidInput(
            "rectify_by",
            f"{decision.rectify_by} must be after the talk on {decision.talk_on}",
        )


def record_rectification(
    talk: Talk, report: RectificationReport, *, township: str, by: str, today: date
) -> Talk:
    """approved → rectified, by the talk's own township only."""
    if talk.township != township:
        raise NotYours(f"talk {talk.talk_id} is {talk.township}'s, not {township}'s")
    if talk.status is not TalkStatus.approved:
        raise StateError(
            f"talk {talk.talk_id} is {talk.status}; only an approved talk's rectification "
            "can be reported"
        )
    if report.completed_on > today:
        raise InvalidInput("completed_on", f"{report.completed_on} is in the future")
    if talk.talk_on is not None and report.completed_on < talk.talk_on:
        raise InvalidInput(
            "completed_on", f"{report.completed_on} is before the talk on {talk.talk_on}"
        )
    return replace(
        talk,
        status=TalkStatus.rectified,
        rectified_on=report.completed_on,
        rectification_summary=report.summary,
        rectified_by=by,
    )


def rectification(talk: Talk, today: date) -> Rectification:
    """Overdue the day after the deadline passes without the township reporting it done."""
    if talk.rectify_by is None:
        return Rectification.none
    if talk.rectified_on is not None:
        return Rectification.met if talk.rectified_on <= talk.rectify_by else Rectification.met_late
    return Rectification.overdue if today > talk.rectify_by else Rectification.open
