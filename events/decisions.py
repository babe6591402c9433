"""Which measures a case's facts start: one pure function over the catalogue and the facts.

The registry decides at each step of a case and writes the decisions into the event it
emits, so the legal record says what started and why, and every department, the
blocklist builder and the feedback tracker act on the same decision. A measure starts
only where its seed sentence covers the case (过惩相当): the land is of its classes, and
the facts its condition names hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from events.catalogue import Catalogue, Condition, Fact, LiftTrigger, Measure, Stage, Target
from events.land import LandClass
from events.models import BuildingUse, CaseFacts, MeasureDecision, Parcel

# What a case filed before facts were recorded (case.filed.v2) is taken to say: nothing
# that a condition could rest on, so only the measures that need no more than the land's
# class start when it is replayed.
UNRECORDED_FACTS = CaseFacts.model_validate(
    {"site": {"location": "not recorded (filed as redline.case.filed.v2)"}}
)


def established(facts: CaseFacts) -> frozenset[Fact]:
    """The catalogue's facts that hold for this case."""
    found: set[Fact] = set()
    project = facts.project
    if project is not None:
        found.add(Fact.construction_project)
        if project.works_started:
            found.add(Fact.works_started)
            if not project.construction_permit:
                found.add(Fact.works_without_permit)
        if project.sector == "transport":
            found.add(Fact.transport_project)
        elif project.sector == "water":
            found.add(Fact.water_project)
    if facts.in_nature_reserve:
        found.add(Fact.in_nature_reserve)
    if facts.building_use is BuildingUse.business_premises:
        found.add(Fact.business_premises)
    if facts.illegal_afforestation:
        found.add(Fact.illegal_afforestation)
    if facts.non_compliant_farming:
        found.add(Fact.non_compliant_farming)
    return frozenset(found)


def describe(condition: Condition) -> str:
    """The condition in words, as a block shows its rule."""
    parts = ["land in " + " or ".join(sorted(condition.land))]
    if condition.all_of:
        parts.append(" and ".join(condition.all_of))
    if condition.any_of:
        parts.append("(" + " or ".join(condition.any_of) + ")")
    if condition.none_of:
        parts.append("not " + " or ".join(condition.none_of))
    return " and ".join(parts)


def condition_met(condition: Condition, land: frozenset[LandClass], facts: frozenset[Fact]) -> bool:
    """Every part of `condition` holds on this land and these facts (measures and referrals)."""
    if not condition.land & land or not set(condition.all_of) <= facts:
        return False
    if set(condition.none_of) & facts:
        return False
    return not condition.any_of or any(fact in facts for fact in condition.any_of)


def matches(
    measure: Measure, land: frozenset[LandClass], facts: frozenset[Fact]
) -> MeasureDecision | None:
    """The decision to start `measure`, with the land and facts it matched, or None."""
    condition = measure.when
    if not condition_met(condition, land, facts):
        return None
    any_matched = tuple(f for f in condition.any_of if f in facts)
    return MeasureDecision(
        measure=measure.code,
        target=measure.targets,
        land=tuple(sorted(condition.land & land)),
        facts=(*condition.all_of, *any_matched),
        rule=describe(condition),
    )


def occupied_classes(parcels: Iterable[Parcel]) -> frozenset[LandClass]:
    return frozenset(parcel.land_class for parcel in parcels)


def decide(
    catalogue: Catalogue,
    stages: Iterable[Stage],
    parcels: Sequence[Parcel],
    facts: CaseFacts,
) -> list[MeasureDecision]:
    """Every measure of these stages whose condition the case meets, once per code, in
    catalogue order."""
    wanted = set(stages)
    land, found = occupied_classes(parcels), established(facts)
    decisions = []
    for measure in catalogue.measures().values():
        if measure.starts_at in wanted:
            decision = matches(measure, land, found)
            if decision is not None:
                decisions.append(decision)
    return decisions


@dataclass(frozen=True)
class Correction:
    """What a correction changes: measures that start (or move to the corrected site or
    project) and measures lifted because the corrected facts no longer meet them."""

    starts: list[MeasureDecision]
    ends: list[str]


def correct(
    catalogue: Catalogue,
    stages: Iterable[Stage],
    before: tuple[Sequence[Parcel], CaseFacts],
    after: tuple[Sequence[Parcel], CaseFacts],
) -> Correction:
    """Compare the measures in force before and after a correction of an open case.

    A measure whose target moved (another site, another project) ends and starts again,
    so the old site is cleared and the new one blocked."""
    reached = tuple(stages)
    was = {d.measure: d for d in decide(catalogue, reached, *before)}
    now = {d.measure: d for d in decide(catalogue, reached, *after)}
    moved = {
        code
        for code, decision in now.items()
        if code in was and _target_moved(decision.target, before[1], after[1])
    }
    ends = [code for code in was if code not in now or code in moved]
    starts = [d for code, d in now.items() if code not in was or code in moved]
    return Correction(starts=starts, ends=ends)


def _target_moved(target: Target, before: CaseFacts, after: CaseFacts) -> bool:
    if target is Target.site:
        return before.site != after.site
    if target is Target.project:
        return (before.project and before.project.code) != (after.project and after.project.code)
    return False


def lifted_by(catalogue: Catalogue, trigger: LiftTrigger) -> list[str]:
    """The measure codes an end condition lifts."""
    return [code for code, m in catalogue.measures().items() if trigger in m.lifted_by]
