"""Pure enforcement rules: which measures an event starts or lifts for a department.

One explicit table maps each event type to the rule that handles it. The feedback
tracker uses the same rules to know what every department owes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from events.catalogue import Department, LiftTrigger, Measure, Stage
from events.models import (
    AccountabilityTriggered,
    CaseFiled,
    CaseRevoked,
    Payload,
    PenaltyDecided,
    RestorationVerified,
)


@dataclass(frozen=True)
class Apply:
    measure: Measure


@dataclass(frozen=True)
class Lift:
    measure: Measure
    reason: LiftTrigger


Effect = Apply | Lift


def _starts(stage: Stage) -> Callable[[Department], list[Effect]]:
    def rule(department: Department) -> list[Effect]:
        return [Apply(m) for m in department.measures if m.starts_at is stage]

    return rule


def _lifts(trigger: LiftTrigger) -> Callable[[Department], list[Effect]]:
    def rule(department: Department) -> list[Effect]:
        return [Lift(m, trigger) for m in department.measures if trigger in m.lifted_by]

    return rule


# Event types not in this table (clues, penalties' follow-ups, corrections, closures)
# change no department's measures; they are still recorded as consumed.
RULES: dict[type[Payload], Callable[[Department], list[Effect]]] = {
    CaseFiled: _starts(Stage.filing),
    PenaltyDecided: _starts(Stage.penalty),
    AccountabilityTriggered: _starts(Stage.accountability),
    RestorationVerified: _lifts(LiftTrigger.restoration_verified),
    CaseRevoked: _lifts(LiftTrigger.revoked),
}


def effects(department: Department, payload: Payload) -> list[Effect]:
    rule = RULES.get(type(payload))
    return rule(department) if rule else []
