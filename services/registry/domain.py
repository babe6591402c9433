"""Pure case rules: the lifecycle state machine, the joint restoration sign-off and the
accountability threshold.

No I/O here; the handlers call these before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from events.catalogue import Catalogue, LiftTrigger, Stage
from events.models import LiftReason, MeasureDecision, Parcel, basic_farmland_mu, cultivated_mu
from services.errors import InvalidInput, RedlineError
from services.principals import Role


class CaseStatus(StrEnum):
    filed = "filed"
    penalty_decided = "penalty_decided"
    rectified = "rectified"
    restored = "restored"
    revoked = "revoked"
    legalised = "legalised"  # lawful land procedures obtained (补办合法用地手续)
    confiscated = "confiscated"  # 没收到位: the case ends with the confiscation
    closed = "closed"


class Step(StrEnum):
    """What a case officer records on a filed case."""

    penalty = "penalty"
    rectification = "rectification"
    restoration = "restoration"
    revocation = "revocation"
    closure = "closure"
    correction = "correction"
    land_procedures = "land_procedures"
    confiscation = "confiscation"


# Open cases take corrections; a legalised, restored, revoked or ended case does not.
_OPEN = frozenset({CaseStatus.filed, CaseStatus.penalty_decided, CaseStatus.rectified})
_PENALISED = frozenset({CaseStatus.penalty_decided, CaseStatus.rectified})

# For each step: the states it may be recorded in, and the state it leads to.
TRANSITIONS: dict[Step, tuple[frozenset[CaseStatus], CaseStatus | None]] = {
    Step.penalty: (frozenset({CaseStatus.filed}), CaseStatus.penalty_decided),
    Step.rectification: (
        frozenset({CaseStatus.penalty_decided, CaseStatus.rectified}),
        CaseStatus.rectified,
    ),
    Step.restoration: (frozenset({CaseStatus.rectified}), CaseStatus.restored),
    Step.revocation: (_OPEN, CaseStatus.revoked),
    Step.closure: (
        frozenset({CaseStatus.restored, CaseStatus.revoked, CaseStatus.legalised}),
        CaseStatus.closed,
    ),
    Step.correction: (_OPEN, None),  # a correction keeps the status
    Step.land_procedures: (_OPEN, CaseStatus.legalised),
    # Confiscation carries out a penalty decision, and ends the case: nothing follows it.
    Step.confiscation: (_PENALISED, CaseStatus.confiscated),
}


class IllegalTransition(RedlineError):
    """A step the case's current state does not allow (HTTP 409)."""

    def __init__(self, current: CaseStatus, step: Step) -> None:
        allowed, _ = TRANSITIONS[step]
        needs = " or ".join(sorted(allowed))
        super().__init__(
            f"cannot record {step} on a case that is {current}; {step} needs the case to be {needs}"
        )
        self.current = current
        self.step = step


def next_status(current: CaseStatus, step: Step) -> CaseStatus:
    allowed, target = TRANSITIONS[step]
    if current not in allowed:
        raise IllegalTransition(current, step)
    return current if target is None else target


# The stage whose measures a step starts (filing and accountability start theirs too, but
# are not steps an officer records on a filed case).
STARTED_BY_STEP: dict[Step, Stage] = {
    Step.penalty: Stage.penalty,
    Step.confiscation: Stage.confiscation,
}


def stages_reached(status: CaseStatus, accountability_started: bool) -> tuple[Stage, ...]:
    """The stages whose measures a correction of a case in `status` decides again: filing
    always, the penalty's once decided, accountability's once it has started."""
    reached = [Stage.filing]
    if status in _PENALISED:
        reached.append(Stage.penalty)
    if accountability_started:
        reached.append(Stage.accountability)
    return tuple(reached)


class SigningBody(StrEnum):
    """The two bodies that verify a restoration together (复耕验收)."""

    natural_resources = "natural_resources"
    agriculture = "agriculture"


# Who signs for which body: the principal's role decides, never the request body.
SIGNING_ROLES: dict[Role, SigningBody] = {
    Role.case_officer: SigningBody.natural_resources,
    Role.agriculture_inspector: SigningBody.agriculture,
}

# The seed's sentence for each body's part in the verification.
SIGN_OFF_BASIS: dict[SigningBody, str] = {
    SigningBody.natural_resources: "自然资源局：会同农业农村局对违法建筑拆除复耕的耕地质量进行验收",
    SigningBody.agriculture: "农业农村局：配合自然资源局做好违法建筑拆除复耕的耕地质量验收",
}


@dataclass(frozen=True)
class SignOff:
    """One body's signature under the restoration of one case."""

    body: SigningBody
    officer: str
    verified_on: date


@dataclass(frozen=True)
class JointVerification:
    """Both bodies signed the same inspection: the restoration is verified."""

    verified_on: date
    natural_resources_officer: str
    agriculture_officer: str


class NotASignatory(RedlineError):
    """A role that signs for neither body (HTTP 403)."""


class AlreadySigned(RedlineError):
    """The same body signing the same restoration twice (HTTP 409)."""


def signing_body(role: Role) -> SigningBody:
    body = SIGNING_ROLES.get(role)
    if body is None:
        bodies = ", ".join(f"{r} for {b}" for r, b in SIGNING_ROLES.items())
        raise NotASignatory(f"{role} signs no restoration; the signatories are {bodies}")
    return body


def sign_off_restoration(
    status: CaseStatus,
    earlier: Sequence[SignOff],
    new: SignOff,
    *,
    rectified_on: date | None = None,
) -> JointVerification | None:
    """Check one more sign-off; the verification once both bodies have signed, else None.

    `earlier` are the sign-offs standing since the latest rectification (a new
    rectification voids them: the land is inspected again after the new works), and
    `rectified_on` the latest completion date among the case's rectifications. The rules:
    - the restoration is verified on or after the rectification was completed;
    - both bodies sign the same inspection, so on the same day;
    - until the second body signs, a body may correct its own date: its sign-off with
      another date replaces its earlier one (standing_sign_offs), whichever of its officers
      signs; the same body with the same date again is AlreadySigned. Once both have
      signed the case is restored and nothing replaces either.

    Raises IllegalTransition (case not rectified), AlreadySigned (same body, same day) or
    InvalidInput on verified_on (before the rectification, or not the other body's day).
    """
    next_status(status, Step.restoration)
    if rectified_on is not None and new.verified_on < rectified_on:
        raise InvalidInput(
            "verified_on",
            f"{new.verified_on} precedes the rectification completed on {rectified_on}; "
            "the restoration is verified after the works are done",
        )
    for signed in earlier:
        if signed.body is new.body:
            if signed.verified_on == new.verified_on:
                raise AlreadySigned(
                    f"{new.body} already signed off the restoration "
                    f"(by {signed.officer}, verified on {signed.verified_on}); "
                    f"the other body's sign-off is what is missing"
                )
            continue  # a correction of this body's own date: it replaces the earlier one
        if signed.verified_on != new.verified_on:
            raise InvalidInput(
                "verified_on",
                f"{new.verified_on} differs from the {signed.body} sign-off's "
                f"{signed.verified_on}; both bodies sign the same inspection (the "
                f"{signed.body} may correct its date by signing again before you sign)",
            )
    by_body = {signed.body: signed for signed in standing_sign_offs(earlier, new)}
    if set(by_body) != set(SigningBody):
        return None
    return JointVerification(
        verified_on=new.verified_on,
        natural_resources_officer=by_body[SigningBody.natural_resources].officer,
        agriculture_officer=by_body[SigningBody.agriculture].officer,
    )


def standing_sign_offs(earlier: Sequence[SignOff], new: SignOff) -> list[SignOff]:
    """The sign-offs that stand once `new` is taken: it replaces its own body's."""
    return [*(signed for signed in earlier if signed.body is not new.body), new]


BASIC_FARMLAND_THRESHOLD_MU = Decimal(5)
CULTIVATED_THRESHOLD_MU = Decimal(10)


@dataclass(frozen=True)
class AccountabilityCheck:
    """Seed §四(五): 非法占用永久基本农田面积5亩以上或耕地10亩以上的案件，一律启动责任追究程序."""

    basic_farmland_mu: Decimal
    cultivated_mu: Decimal

    @property
    def reasons(self) -> list[str]:
        """ "以上" includes the bound itself, hence >=."""
        found: list[str] = []
        if self.basic_farmland_mu >= BASIC_FARMLAND_THRESHOLD_MU:
            found.append(
                f"permanent basic farmland {self.basic_farmland_mu} mu >= "
                f"{BASIC_FARMLAND_THRESHOLD_MU} mu"
            )
        if self.cultivated_mu >= CULTIVATED_THRESHOLD_MU:
            found.append(
                f"cultivated land {self.cultivated_mu} mu >= {CULTIVATED_THRESHOLD_MU} mu "
                "(permanent basic farmland included)"
            )
        return found

    @property
    def due(self) -> bool:
        return bool(self.reasons)

    @property
    def rule(self) -> str:
        return "seed §四(五): " + "; ".join(self.reasons)


def check_accountability(parcels: Sequence[Parcel]) -> AccountabilityCheck:
    """Sum the occupied areas exactly (Decimal) and compare them with the thresholds."""
    return AccountabilityCheck(
        basic_farmland_mu=basic_farmland_mu(parcels), cultivated_mu=cultivated_mu(parcels)
    )


# --- the measures a case's records started and ended ---------------------------------

# The end condition each step records: it lifts every measure its trigger is listed for.
LIFTING_STEPS: dict[str, tuple[LiftTrigger, LiftReason]] = {
    Step.restoration.value: (LiftTrigger.restoration_verified, "restoration_verified"),
    Step.revocation.value: (LiftTrigger.revoked, "revoked"),
    Step.land_procedures.value: (LiftTrigger.land_procedures_obtained, "land_procedures_obtained"),
    Step.confiscation.value: (LiftTrigger.confiscation_completed, "confiscation_completed"),
}
CORRECTED: LiftReason = "corrected"


class Recorded(Protocol):
    """What the measures' history needs of one case record (ports.CaseRecord)."""

    @property
    def step(self) -> str: ...

    @property
    def event_id(self) -> str: ...

    @property
    def recorded_at(self) -> datetime: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class MeasureSpell:
    """One measure from the record that started it to the one that ended it, if any; a
    measure a correction ends and another starts again has two spells."""

    decision: MeasureDecision
    started_by: str  # the step, e.g. filing, penalty, accountability, correction
    started_event: str
    started_at: datetime
    ended_by: LiftReason | None = None
    ended_event: str | None = None
    ended_at: datetime | None = None


def measure_history(catalogue: Catalogue, records: Iterable[Recorded]) -> list[MeasureSpell]:
    """Replay a case's records in order: each record's lifts first (a correction's
    `ends`, or every measure its step's end condition lifts), then its `starts` — the
    order the departments apply them in."""
    measures = catalogue.measures()
    spells: list[MeasureSpell] = []
    open_at: dict[str, int] = {}  # measure code -> index of its spell in force

    def end(code: str, reason: LiftReason, record: Recorded) -> None:
        index = open_at.pop(code)
        spells[index] = replace(
            spells[index],
            ended_by=reason,
            ended_event=record.event_id,
            ended_at=record.recorded_at,
        )

    for record in records:
        lifting = LIFTING_STEPS.get(record.step)
        if lifting is not None:
            trigger, reason = lifting
            for code in [c for c in open_at if c in measures and trigger in measures[c].lifted_by]:
                end(code, reason, record)
        for code in record.data.get("ends") or ():
            if code in open_at:
                end(code, CORRECTED, record)
        for raw in record.data.get("starts") or ():
            decision = MeasureDecision.model_validate(raw)
            if decision.measure in open_at:  # started twice without an end: keep the first
                continue
            open_at[decision.measure] = len(spells)
            spells.append(
                MeasureSpell(
                    decision=decision,
                    started_by=record.step,
                    started_event=record.event_id,
                    started_at=record.recorded_at,
                )
            )
    return spells
