"""Pure case rules: the lifecycle state machine, the joint restoration sign-off and the
accountability threshold.

No I/O here; the handlers call these before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from events.models import Parcel, basic_farmland_mu, cultivated_mu
from services.access import Role
from services.errors import InvalidInput, RedlineError


class CaseStatus(StrEnum):
    filed = "filed"
    penalty_decided = "penalty_decided"
    rectified = "rectified"
    restored = "restored"
    revoked = "revoked"
    closed = "closed"


class Step(StrEnum):
    """What a case officer records on a filed case."""

    penalty = "penalty"
    rectification = "rectification"
    restoration = "restoration"
    revocation = "revocation"
    closure = "closure"
    correction = "correction"


_OPEN = frozenset({CaseStatus.filed, CaseStatus.penalty_decided, CaseStatus.rectified})

# For each step: the states it may be recorded in, and the state it leads to.
TRANSITIONS: dict[Step, tuple[frozenset[CaseStatus], CaseStatus | None]] = {
    Step.penalty: (frozenset({CaseStatus.filed}), CaseStatus.penalty_decided),
    Step.rectification: (
        frozenset({CaseStatus.penalty_decided, CaseStatus.rectified}),
        CaseStatus.rectified,
    ),
    Step.restoration: (frozenset({CaseStatus.rectified}), CaseStatus.restored),
    Step.revocation: (_OPEN, CaseStatus.revoked),
    Step.closure: (frozenset({CaseStatus.restored, CaseStatus.revoked}), CaseStatus.closed),
    Step.correction: (_OPEN, None),  # a correction keeps the status
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
    status: CaseStatus, earlier: Sequence[SignOff], new: SignOff
) -> JointVerification | None:
    """Check one more sign-off; the verification once both bodies have signed, else None.

    Raises IllegalTransition (case not rectified), AlreadySigned (same body again) or
    InvalidInput on verified_on (the two bodies must sign the same inspection).
    """
    next_status(status, Step.restoration)
    for signed in earlier:
        if signed.body is new.body:
            raise AlreadySigned(
                f"{new.body} already signed off the restoration "
                f"(by {signed.officer}, verified on {signed.verified_on}); "
                f"the other body's sign-off is what is missing"
            )
        if signed.verified_on != new.verified_on:
            raise InvalidInput(
                "verified_on",
                f"{new.verified_on} differs from the {signed.body} sign-off's "
                f"{signed.verified_on}; both bodies sign the same inspection",
            )
    by_body = {signed.body: signed for signed in (*earlier, new)}
    if set(by_body) != set(SigningBody):
        return None
    return JointVerification(
        verified_on=new.verified_on,
        natural_resources_officer=by_body[SigningBody.natural_resources].officer,
        agriculture_officer=by_body[SigningBody.agriculture].officer,
    )


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
