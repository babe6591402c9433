"""The demo generator: valid, deterministic, realistic sample data (no database)."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import date

import pytest

from demo import SCENARIOS, DemoGenerator, describe_facts, plan_steps
from events.catalogue import Stage, load_catalogue
from events.decisions import decide, established
from events.identifiers import validate_resident_id, validate_uscc
from events.land import is_cultivated
from events.models import BuildingUse, CaseDetails, Subject
from services.referrals.domain import automatic_referrals
from services.registry.domain import CaseStatus, Step, check_accountability, next_status
from services.townships.directory import load_townships

TODAY = date(2026, 5, 1)
TOWNSHIPS = sorted(load_townships())


def _generator(seed: int = 1) -> DemoGenerator:
    return DemoGenerator(seed, TOWNSHIPS, TODAY)


@pytest.fixture(scope="module")
def cases() -> list[CaseDetails]:
    gen = _generator()
    return [gen.case_details() for _ in range(500)]


def _check_subject(subject: Subject) -> None:
    if subject.kind == "organization":
        assert validate_uscc(subject.id) == subject.id
        assert subject.id[:2] == "91"
        assert subject.name.startswith("孝义市")
    else:
        assert validate_resident_id(subject.id, today=TODAY) == subject.id
        assert subject.id.startswith("141181")
        assert 1950 <= int(subject.id[6:10]) <= 2000
    assert subject == Subject.model_validate(subject.model_dump())


def test_every_subject_has_a_valid_identifier() -> None:
    gen = _generator()
    subjects = [gen.subject() for _ in range(1000)]
    for subject in subjects:
        _check_subject(subject)
    organizations = sum(s.kind == "organization" for s in subjects) / len(subjects)
    assert 0.5 < organizations < 0.7


def test_case_subjects_are_valid_and_some_repeat(cases: list[CaseDetails]) -> None:
    for case in cases:
        _check_subject(case.subject)
    repeats = Counter(case.subject.id for case in cases)
    assert any(count > 1 for count in repeats.values())
    assert len(repeats) < len(cases)


def test_same_seed_gives_the_same_sequence() -> None:
    first, second, other = _generator(42), _generator(42), _generator(43)
    run = [first.case_details() for _ in range(50)] + [first.penalty(), first.closure()]
    again = [second.case_details() for _ in range(50)] + [second.penalty(), second.closure()]
    assert run == again
    assert [other.case_details() for _ in range(50)] != run[:50]


def test_the_odd_case_crosses_the_accountability_threshold(cases: list[CaseDetails]) -> None:
    share = sum(check_accountability(case.parcels).due for case in cases) / len(cases)
    assert 0.03 <= share <= 0.20


CATALOGUE = load_catalogue()
SUPPLY = {"refuse_water_supply", "refuse_power_supply", "refuse_gas_supply", "refuse_loans"}


def _filing_measures(case: CaseDetails) -> set[str]:
    return {d.measure for d in decide(CATALOGUE, [Stage.filing], case.parcels, case.facts)}


def test_most_cases_start_only_what_their_facts_call_for(cases: list[CaseDetails]) -> None:
    started = [_filing_measures(case) for case in cases]
    nothing = [case for case, measures in zip(cases, started, strict=True) if not measures]
    assert 0.05 <= len(nothing) / len(cases) <= 0.30
    # those are the cases on no farmland at all: not farmland cases, whatever stands there
    assert all(not any(is_cultivated(p.land_class) for p in case.parcels) for case in nothing)
    assert {case.facts.building_use for case in nothing} > {BuildingUse.none}
    # a small case starts a few measures; the long lists are for projects and premises
    assert statistics.median(len(measures) for measures in started) <= 3
    everything = set().union(*started)
    assert {"cancel_agricultural_support", "refuse_afforestation_subsidy"} <= everything
    assert everything >= SUPPLY


def test_supply_is_refused_only_to_a_project_or_business_premises(
    cases: list[CaseDetails],
) -> None:
    supplied = 0
    for case in cases:
        facts = case.facts
        premises = facts.building_use is BuildingUse.business_premises
        if _filing_measures(case) & SUPPLY:
            supplied += 1
            assert facts.project is not None or premises, describe_facts(case)
        elif any(is_cultivated(p.land_class) for p in case.parcels):
            assert facts.project is None and not premises, describe_facts(case)
    assert 0.1 <= supplied / len(cases) <= 0.5


def test_facts_are_realistic_and_varied(cases: list[CaseDetails]) -> None:
    uses = Counter(case.facts.building_use for case in cases)
    assert set(uses) == set(BuildingUse)
    assert uses[BuildingUse.residence] > uses[BuildingUse.storage]
    sites = [case.facts.site for case in cases]
    assert all(site.location for site in sites)
    units = [site.real_estate_unit for site in sites if site.real_estate_unit]
    assert units and all(unit.startswith("141181") for unit in units)
    assert any(site.parcel_code for site in sites)
    assert any(site.coordinates for site in sites)
    projects = [case.facts.project for case in cases if case.facts.project is not None]
    assert any(p.works_started and not p.construction_permit for p in projects)
    assert any(not p.works_started for p in projects)
    assert sum(case.facts.non_compliant_farming for case in cases) > 10
    assert sum(case.facts.illegal_afforestation for case in cases) > 10
    # a residence is built by a person far more often than by a company
    residences = [case for case in cases if case.facts.building_use is BuildingUse.residence]
    persons = sum(case.subject.kind == "person" for case in residences)
    assert persons / len(residences) > 0.6


def test_transport_water_and_nature_reserve_cases_reach_their_bodies(
    cases: list[CaseDetails],
) -> None:
    """Some projects are transport's or water resources' and start their halts; some
    sites lie in a nature reserve and are referred to ecology and environment (#17)."""
    sectors = Counter(c.facts.project.sector for c in cases if c.facts.project is not None)
    assert sectors["transport"] and sectors["water"] and sectors["municipal"] and sectors[None]
    everything = set().union(*(_filing_measures(case) for case in cases))
    assert {"halt_transport_works", "supervise_water_project_land_procedures"} <= everything
    in_reserve = [case for case in cases if case.facts.in_nature_reserve]
    assert in_reserve
    for case in in_reserve:
        land = frozenset(parcel.land_class for parcel in case.parcels)
        sent = automatic_referrals(CATALOGUE, Stage.filing, land, established(case.facts))
        assert [r.kind.code for r in sent] == ["nature_reserve"], describe_facts(case)
        assert "inside a nature reserve" in describe_facts(case)


def test_every_scenario_is_drawn() -> None:
    gen = _generator(11)
    drawn = Counter(gen.scenario().code for _ in range(2000))
    assert set(drawn) == {scenario.code for scenario in SCENARIOS}


def test_plans_walk_legal_steps_and_sometimes_end_in_land_procedures_or_confiscation(
    cases: list[CaseDetails],
) -> None:
    gen, rng = _generator(5), random.Random(5)
    ends: Counter[CaseStatus] = Counter()
    for case in cases:
        status = CaseStatus.filed
        steps = plan_steps(gen, rng, case)
        for step, _ in steps:  # a restoration's two sign-offs make one transition
            status = next_status(status, step)  # raises on an illegal transition
        if any(step is Step.land_procedures for step, _ in steps):
            assert case.facts.project is not None or (
                case.facts.building_use is BuildingUse.business_premises
            )
            assert status is CaseStatus.closed
        ends[status] += 1
    assert ends[CaseStatus.confiscated] > 5
    assert ends[CaseStatus.closed] > ends[CaseStatus.confiscated]


def test_cases_are_recent_and_in_known_townships(cases: list[CaseDetails]) -> None:
    for case in cases:
        assert case.found_on <= TODAY
        assert (TODAY - case.found_on).days <= 90
        assert case.township in TOWNSHIPS
        assert 1 <= len(case.parcels) <= 3
    assert len({case.township for case in cases}) > 1


def test_some_areas_come_from_square_metres(cases: list[CaseDetails]) -> None:
    # m² converts to mu with more than 2 decimals; typed-in mu never has more than 2.
    converted = [
        p
        for case in cases
        for p in case.parcels
        if -int(p.area_mu.normalize().as_tuple().exponent) > 2
    ]
    assert converted


def test_step_dates_are_chained_and_never_in_the_future(cases: list[CaseDetails]) -> None:
    gen = _generator(7)
    for case in cases[:200]:
        clue = gen.clue(case)
        penalty = gen.penalty(case.found_on)
        rectification = gen.rectification(penalty.decided_on)
        restoration = gen.restoration(rectification.completed_on)
        closure = gen.closure(restoration.verified_on)
        revocation = gen.revocation(penalty.decided_on)
        procedures = gen.land_procedures(penalty.decided_on)
        confiscation = gen.confiscation(penalty, rectification.completed_on)
        assert penalty.decided_on <= procedures.approved_on <= TODAY
        assert rectification.completed_on <= confiscation.completed_on <= TODAY
        assert confiscation.decision_no == penalty.decision_no
        dates = [
            case.found_on,
            penalty.decided_on,
            rectification.completed_on,
            restoration.verified_on,
            closure.closed_on,
        ]
        assert dates == sorted(dates)
        assert all(day <= TODAY for day in dates)
        assert clue.reported_on <= TODAY
        assert penalty.decided_on <= revocation.revoked_on <= TODAY
        assert penalty.fine_yuan > 0
        assert f"〔{penalty.decided_on.year}〕" in penalty.decision_no
        assert restoration.natural_resources_officer
        assert restoration.agriculture_officer


def test_steps_without_a_start_date_are_not_in_the_future() -> None:
    gen = _generator(3)
    for _ in range(200):
        assert gen.penalty().decided_on <= TODAY
        assert gen.rectification().completed_on <= TODAY
        assert gen.restoration().verified_on <= TODAY
        assert gen.revocation().revoked_on <= TODAY
        assert gen.closure().closed_on <= TODAY


def test_no_townships_is_refused() -> None:
    with pytest.raises(ValueError, match="township"):
        DemoGenerator(1, [], TODAY)
