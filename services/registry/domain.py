"""Pure case rules: the lifecycle state machine and the accountability threshold.

No I/O here; the handlers call these before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from events.models import Parcel, basic_farmland_mu, cultivated_mu
from services.errors import RedlineError


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
