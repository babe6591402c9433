"""Pure enforcement rules: which measures an event starts or lifts for a department.

The registry decides which measures a case's facts start (events.decisions) and writes
the decisions into the event; a department applies exactly those of its own measures,
and lifts its measures whose end conditions the event meets. One explicit table maps
each event type to the rule that handles it. The blocklist builder and the feedback
tracker use the same rules, so none of them can disagree about what is owed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from events.catalogue import Department, LiftTrigger, Measure
from events.envelope import Envelope
from events.models import (
    AccountabilityTriggered,
    CaseCorrected,
    CaseFacts,
    CaseFiled,
    CaseRevoked,
    ConfiscationCompleted,
    LandProceduresObtained,
    LiftReason,
    MeasureDecision,
    Payload,
    PenaltyDecided,
    RestorationVerified,
)
from services.consuming import case_id_of

CORRECTED: LiftReason = "corrected"


@dataclass(frozen=True)
class Apply:
    """Start `measure` on the case, for the reasons the registry recorded."""

    measure: Measure
    decision: MeasureDecision


@dataclass(frozen=True)
class Lift:
    measure: Measure
    reason: LiftReason


Effect = Apply | Lift
Rule = Callable[[Department, Payload], list[Effect]]


def _applies(department: Department, decisions: list[MeasureDecision]) -> list[Effect]:
    own = {measure.code: measure for measure in department.measures}
    return [Apply(own[d.measure], d) for d in decisions if d.measure in own]


def _starts(department: Department, payload: Payload) -> list[Effect]:
    if not isinstance(payload, CaseFiled | PenaltyDecided | AccountabilityTriggered):
        return []
    return _applies(department, payload.starts)


def _lifts(trigger: LiftTrigger) -> Rule:
    def rule(department: Department, payload: Payload) -> list[Effect]:
        lifted: list[Effect] = [
            Lift(m, trigger.value) for m in department.measures if trigger in m.lifted_by
        ]
        if isinstance(payload, ConfiscationCompleted):  # ends the case, tells finance
            lifted.extend(_applies(department, payload.starts))
        return lifted

    return rule


def _corrects(department: Department, payload: Payload) -> list[Effect]:
    """Lifts first, so a measure that moved to a corrected site ends there and starts
    at the new one."""
    if not isinstance(payload, CaseCorrected):
        return []
    ended = set(payload.ends)
    lifted: list[Effect] = [Lift(m, CORRECTED) for m in department.measures if m.code in ended]
    return [*lifted, *_applies(department, payload.starts)]


# Event types not in this table (clues, rectifications, closures) change no department's
# measures; they are still recorded as consumed.
RULES: dict[type[Payload], Rule] = {
    CaseFiled: _starts,
    PenaltyDecided: _starts,
    AccountabilityTriggered: _starts,
    CaseCorrected: _corrects,
    RestorationVerified: _lifts(LiftTrigger.restoration_verified),
    CaseRevoked: _lifts(LiftTrigger.revoked),
    LandProceduresObtained: _lifts(LiftTrigger.land_procedures_obtained),
    ConfiscationCompleted: _lifts(LiftTrigger.confiscation_completed),
}


def effects(department: Department, payload: Payload) -> list[Effect]:
    """What `payload` asks of `department`, lifts before applies."""
    rule = RULES.get(type(payload))
    return rule(department, payload) if rule else []


def fold_blocks(
    active: set[tuple[str, str]], case_id: str, wanted: Iterable[Effect]
) -> list[Effect]:
    """The effects that change which blocks are in force on a case: an apply of a block not
    in force, a lift of one in force; the others change nothing. `active` holds the
    (measure, case id) of the blocks in force and is the caller's working set, updated
    here in order, so a batch that lifts and applies again folds to both. The enforcer
    and the blocklist builder fold the same way, so a list cannot disagree with its
    department."""
    changed: list[Effect] = []
    for effect in wanted:
        key = (effect.measure.code, case_id)
        if isinstance(effect, Apply) and key not in active:
            active.add(key)
            changed.append(effect)
        elif isinstance(effect, Lift) and key in active:
            active.discard(key)
            changed.append(effect)
    return changed


CaseT = TypeVar("CaseT")


@dataclass(frozen=True)
class InForce(Generic[CaseT]):
    """What a plan needs of its store: the batch's known cases, and the (measure, case id)
    of the blocks in force on them."""

    cases: dict[str, CaseT]
    active: set[tuple[str, str]]


def case_ids_in(events: Iterable[tuple[Envelope, Payload]]) -> list[str]:
    """The cases a batch is about, in order, for reading them and their blocks in force."""
    return sorted({case_id_of(payload) for _, payload in events} - {""})


@dataclass(frozen=True)
class Step(Generic[CaseT]):
    """One event of a batch as it falls on its case."""

    envelope: Envelope
    case_id: str
    case: CaseT | None  # None: the case's case.filed never reached this consumer
    wanted: list[Effect]  # all the event asks
    changes: list[Effect]  # what of it changes the blocks in force (none without a case)


def fold_events(
    events: Iterable[tuple[Envelope, Payload]],
    cases: dict[str, CaseT],
    active: set[tuple[str, str]],
    *,
    asks: Callable[[Payload], list[Effect]],
    filed: Callable[[Envelope, CaseFiled], CaseT],
    corrected: Callable[[Envelope, CaseT, CaseFacts], CaseT],
) -> Iterator[Step[CaseT]]:
    """A batch's events in order, each on its case. A first case.filed records its case
    (`filed`); a correction of the facts changes a known case (`corrected`) before the
    correction's starts apply, so a block moved with the facts is held where they now
    say; what the event `asks` is folded against the blocks in force (`fold_blocks`).
    `cases` and `active` are the caller's working sets, updated here in order. The enforcer and the
    blocklist builder walk a batch this way, so a list cannot disagree with its
    department."""
    for envelope, payload in events:
        case_id = case_id_of(payload)
        case = cases.get(case_id)
        if isinstance(payload, CaseFiled) and case is None:
            case = cases[case_id] = filed(envelope, payload)
        elif isinstance(payload, CaseCorrected) and payload.facts and case is not None:
            case = cases[case_id] = corrected(envelope, case, payload.facts)
        wanted = asks(payload)
        changes = [] if case is None else fold_blocks(active, case_id, wanted)
        yield Step(envelope, case_id, case, wanted, changes)
