"""Referrals as workflows (issue #17): pure rules, no I/O.

A referral is sent by one body to another (移送, 申请强制执行, 报告); the receiver accepts it
under its own reference number (受理/立案号) or refuses it with a reason, and then records
an outcome from the kind's list. Each answer has a deadline from the catalogue: the
answer is due `answer_within_hours` after sending, the outcome `outcome_within_days` after
acceptance; a referral past a deadline it has not met is overdue, as a block is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from events.catalogue import NATURAL_RESOURCES_CODE, Catalogue, Fact, ReferralKind, Stage
from events.decisions import condition_met, describe
from events.land import LandClass
from services.errors import InvalidInput, RedlineError
from services.principals import Principal, Role


class ReferralStatus(StrEnum):
    sent = "sent"  # waiting for the receiver to accept or refuse
    accepted = "accepted"  # under the receiver's reference, waiting for the outcome
    refused = "refused"  # the receiver declined it, with a reason (ends it)
    answered = "answered"  # the outcome is recorded (ends it)


PENDING = frozenset({ReferralStatus.sent, ReferralStatus.accepted})


class ReferralStep(StrEnum):
    acceptance = "acceptance"
    refusal = "refusal"
    outcome = "outcome"


class Deadline(StrEnum):
    """Which answer a referral is late with."""

    answer = "answer"  # accept or refuse
    outcome = "outcome"


# What each step needs the referral to be in, and what it leaves it in.
TRANSITIONS: dict[ReferralStep, tuple[ReferralStatus, ReferralStatus]] = {
    ReferralStep.acceptance: (ReferralStatus.sent, ReferralStatus.accepted),
    ReferralStep.refusal: (ReferralStatus.sent, ReferralStatus.refused),
    ReferralStep.outcome: (ReferralStatus.accepted, ReferralStatus.answered),
}


class ReferralError(RedlineError):
    """Base of the referral refusals; each maps to one HTTP status."""


class IllegalReferralStep(ReferralError):
    """The step does not fit the referral's state (HTTP 409), both named."""

    def __init__(self, referral_id: str, status: ReferralStatus, step: ReferralStep) -> None:
        needed = TRANSITIONS[step][0]
        super().__init__(f"referral {referral_id} is {status}: {step} needs it {needed}")
        self.status = status
        self.step = step


class AlreadyPending(ReferralError):
    """The case already has an unanswered referral of this kind (HTTP 409)."""


class NotAllowed(ReferralError):
    """The caller's body may not take this step (HTTP 403), the field and reason named."""

    def __init__(self, reason: str, field: str = "Authorization") -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class NoSuchReferral(ReferralError):
    """No such referral, or no such case to refer (HTTP 404)."""


@dataclass(frozen=True)
class Referral:
    referral_id: str
    kind: str
    case_id: str | None  # None only for a clue about a township (audit_clue)
    township: str
    sent_by: str  # the sending body's code
    sent_by_officer: str  # who sent it: a token's name, or "automatic"
    to: str  # the receiving body's code
    automatic: bool
    reason: str
    file_summary: str
    sent_at: datetime
    answer_due_at: datetime
    status: ReferralStatus = ReferralStatus.sent
    answered_at: datetime | None = None
    answered_by: str | None = None
    reference: str | None = None  # the receiver's own number (受理/立案号)
    refusal_reason: str | None = None
    outcome_due_at: datetime | None = None
    outcome: str | None = None
    outcome_on: date | None = None
    outcome_note: str | None = None
    outcome_at: datetime | None = None
    outcome_by: str | None = None


def send(
    kind: ReferralKind,
    *,
    referral_id: str,
    case_id: str | None,
    township: str,
    sent_by: str,
    officer: str,
    reason: str,
    file_summary: str,
    at: datetime,
    automatic: bool = False,
) -> Referral:
    """A new referral, its answer due `answer_within_hours` from now."""
    if sent_by not in kind.sent_by:
        raise NotAllowed(sender_refusal(kind, sent_by))
    check_addressed(kind, case_id, None if case_id is not None else township)
    return Referral(
        referral_id=referral_id,
        kind=kind.code,
        case_id=case_id,
        township=township,
        sent_by=sent_by,
        sent_by_officer=officer,
        to=kind.to,
        automatic=automatic,
        reason=reason,
        file_summary=file_summary,
        sent_at=at,
        answer_due_at=at + timedelta(hours=kind.answer_within_hours),
    )


# An audit finds unfulfilled duties of a township's cadres, not an occupation: no case.
CASELESS_KIND = "audit_clue"


def check_addressed(kind: ReferralKind, case_id: str | None, township: str | None) -> None:
    """A referral is on a case (and takes its township), except a township clue from an
    audit, which names the township and no case."""
    if kind.code == CASELESS_KIND:
        if case_id is not None:
            raise InvalidInput("case_id", f"a {kind.code} referral names a township, not a case")
        if township is None:
            raise InvalidInput("township", f"a {kind.code} referral names the township")
        return
    if case_id is None:
        raise InvalidInput("case_id", f"a {kind.code} referral is on a case: case_id is required")
    if township is not None:
        raise InvalidInput("township", "a referral on a case takes the case's township")


def _step(referral: Referral, step: ReferralStep) -> ReferralStatus:
    needed, after = TRANSITIONS[step]
    if referral.status is not needed:
        raise IllegalReferralStep(referral.referral_id, referral.status, step)
    return after


def accept(
    referral: Referral, kind: ReferralKind, *, reference: str, by: str, at: datetime
) -> Referral:
    """Accepted under the receiver's reference; the outcome is due from now."""
    status = _step(referral, ReferralStep.acceptance)
    reference = reference.strip()
    if not reference:
        raise InvalidInput("reference", "the receiver's own reference number is required")
    return replace(
        referral,
        status=status,
        answered_at=at,
        answered_by=by,
        reference=reference,
        outcome_due_at=at + timedelta(days=kind.outcome_within_days),
    )


def refuse(referral: Referral, *, reason: str, by: str, at: datetime) -> Referral:
    """Refused: the reason is what the sender acts on (send again, or to another body)."""
    status = _step(referral, ReferralStep.refusal)
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason", "a refusal must say why")
    return replace(referral, status=status, answered_at=at, answered_by=by, refusal_reason=reason)


def record_outcome(
    referral: Referral,
    kind: ReferralKind,
    *,
    outcome: str,
    decided_on: date,
    note: str,
    by: str,
    at: datetime,
) -> Referral:
    """The receiver's ruling, one of the kind's outcomes, on or after the acceptance."""
    if outcome not in kind.outcomes:
        raise InvalidInput(
            "outcome", f"{outcome!r} is not an outcome of {kind.code}: {', '.join(kind.outcomes)}"
        )
    status = _step(referral, ReferralStep.outcome)
    accepted_on = referral.answered_at
    if accepted_on is not None and decided_on < accepted_on.date() - timedelta(days=1):
        # A day's grace: the acceptance is stored in UTC, the ruling dated locally.
        raise InvalidInput(
            "decided_on", f"{decided_on} is before the referral was accepted ({accepted_on:%F})"
        )
    return replace(
        referral,
        status=status,
        outcome=outcome,
        outcome_on=decided_on,
        outcome_note=note.strip(),
        outcome_at=at,
        outcome_by=by,
    )


def overdue(referral: Referral, now: datetime) -> Deadline | None:
    """The deadline the referral is past without its answer, if any."""
    if referral.status is ReferralStatus.sent and now > referral.answer_due_at:
        return Deadline.answer
    if (
        referral.status is ReferralStatus.accepted
        and referral.outcome_due_at is not None
        and now > referral.outcome_due_at
    ):
        return Deadline.outcome
    return None


def answered_late(referral: Referral) -> bool:
    """Answered, but after its answer was due (shown as done late, like a block)."""
    return referral.answered_at is not None and referral.answered_at > referral.answer_due_at


# --- automatic referrals -------------------------------------------------------------


@dataclass(frozen=True)
class AutomaticReferral:
    kind: ReferralKind
    rule: str  # the condition in words, as the referral's reason


def automatic_referrals(
    catalogue: Catalogue,
    stage: Stage,
    land: frozenset[LandClass],
    facts: frozenset[Fact],
    pending: Iterable[str] = (),
) -> list[AutomaticReferral]:
    """The referral kinds sent automatically at `stage` whose condition the case meets,
    in catalogue order, leaving out the kinds already pending on the case."""
    waiting = set(pending)
    found = []
    for kind in catalogue.referrals:
        if kind.starts_at is not stage or kind.when is None or kind.code in waiting:
            continue
        if condition_met(kind.when, land, facts):
            found.append(AutomaticReferral(kind, describe(kind.when)))
    return found


def automatic_sender(kind: ReferralKind) -> str:
    """The registry sends an automatic referral for natural resources where it may."""
    return NATURAL_RESOURCES_CODE if NATURAL_RESOURCES_CODE in kind.sent_by else kind.sent_by[0]


def check_not_pending(referrals: Sequence[Referral], kind: str) -> None:
    """One unanswered referral of a kind per case: a second is a duplicate. A refused or
    answered one may be followed by a new one (more evidence, another stage)."""
    for earlier in referrals:
        if earlier.kind == kind and earlier.status in PENDING:
            raise AlreadyPending(
                f"case {earlier.case_id} already has a {kind} referral {earlier.status} "
                f"({earlier.referral_id})"
            )


# --- who may do what -----------------------------------------------------------------


def acting_body(principal: Principal) -> str | None:
    """The body a principal acts for: a case officer for natural resources, a department
    or party token for its own code; others act for no body."""
    if principal.role is Role.case_officer:
        return NATURAL_RESOURCES_CODE
    if principal.role is Role.department:
        return principal.department
    return None


def sender_refusal(kind: ReferralKind, body: str | None) -> str:
    return (
        f"a {kind.code} referral is sent by {', '.join(kind.sent_by)}, not by {body or 'this role'}"
    )


def check_sender(principal: Principal, kind: ReferralKind) -> str:
    """The body the principal sends `kind` for, or NotAllowed."""
    body = acting_body(principal)
    if body is None or body not in kind.sent_by:
        raise NotAllowed(sender_refusal(kind, body))
    return body


def check_receiver(principal: Principal, referral: Referral) -> str:
    """Only the receiving body's own token answers a referral."""
    if principal.role is not Role.department or principal.department != referral.to:
        who = principal.department if principal.role is Role.department else principal.role
        raise NotAllowed(
            f"referral {referral.referral_id} is answered by {referral.to} only, not by {who}"
        )
    return referral.to


def may_read(principal: Principal, referral: Referral) -> bool:
    """Sender, receiver and operators; case officers those on cases (the registry's own)
    and those natural resources sent, never a township clue between other bodies."""
    if principal.role is Role.operator:
        return True
    if principal.role is Role.case_officer:
        return referral.case_id is not None or referral.sent_by == NATURAL_RESOURCES_CODE
    if principal.role is Role.department:
        return principal.department in (referral.sent_by, referral.to)
    return False


CLUE_REPORTERS = frozenset(
    {Role.case_officer, Role.department, Role.village_patrol, Role.field_chief}
)


def clue_refusal(principal: Principal, township: str) -> NotAllowed | None:
    """Why `principal` may not report a clue in `township`, else None: a village patrol
    or field chief reports only in its own township (seed §一: 村（组）巡查, 田长制)."""
    if principal.role not in CLUE_REPORTERS:
        return NotAllowed(f"a {principal.role} does not report clues")
    if principal.role in (Role.village_patrol, Role.field_chief) and township != principal.township:
        return NotAllowed(
            f"{principal.name} ({principal.role}) reports clues in {principal.township} only, "
            f"not in {township}",
            field="township",
        )
    return None
