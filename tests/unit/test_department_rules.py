"""The pure rules table: which measures each event type starts or lifts, per department.

The registry decides (events.decisions) and writes its decisions into the event; these
tests build events the way it does and check that each department applies exactly its
own share of them, and lifts what each end condition ends.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from events.catalogue import Department, LiftTrigger, Stage, load_catalogue
from events.decisions import correct, decide
from events.models import (
    AccountabilityTriggered,
    CaseClosed,
    CaseCorrected,
    CaseFacts,
    CaseFiled,
    CaseRevoked,
    ClueReported,
    ConfiscationCompleted,
    LandProceduresObtained,
    MeasureDecision,
    Parcel,
    Payload,
    PenaltyDecided,
    RectificationRecorded,
    RestorationVerified,
)
from services.departments.domain import CORRECTED, RULES, Apply, Effect, Lift, effects
from tests.support import business_premises_facts, case_body, new_unit_code, step_event

CASE = "XY-2026-0001"
CATALOGUE = load_catalogue()
DEPARTMENTS = CATALOGUE.departments
FARMLAND = [Parcel(land_class="permanent_basic_farmland", area_mu="6")]
FACTS = CaseFacts.model_validate(business_premises_facts())

# Measures that are records rather than blocks: only a revocation lifts them. (Referrals
# are workflows now, catalogue `referrals`, not measures: issue #17.)
REFERRALS = {
    ("development_reform", "publish_credit_record"),
    ("finance", "supervise_confiscated_property"),
}


def starts(stage: Stage, parcels: list[Parcel] = FARMLAND, facts: CaseFacts = FACTS) -> Any:
    return [d.model_dump(mode="json") for d in decide(CATALOGUE, [stage], parcels, facts)]


def filed(**body: Any) -> CaseFiled:
    data = {**case_body(("permanent_basic_farmland", "6")), "case_id": CASE, **body}
    case = CaseFiled.model_validate(data)
    decisions = decide(CATALOGUE, [Stage.filing], case.parcels, case.facts)
    return case.model_copy(update={"starts": decisions})


def penalty() -> PenaltyDecided:
    return step_event(PenaltyDecided, CASE, starts(Stage.penalty))


def accountability() -> AccountabilityTriggered:
    return step_event(AccountabilityTriggered, CASE, starts(Stage.accountability))


def restored() -> RestorationVerified:
    return step_event(RestorationVerified, CASE)


def revoked() -> CaseRevoked:
    return step_event(CaseRevoked, CASE)


def procedures() -> LandProceduresObtained:
    return step_event(LandProceduresObtained, CASE)


def confiscated() -> ConfiscationCompleted:
    return step_event(ConfiscationCompleted, CASE, starts(Stage.confiscation))


def closed() -> CaseClosed:
    return CaseClosed(case_id=CASE, closed_on=date(2027, 5, 1), reason="restored and verified")


def changed(**facts: Any) -> CaseFacts:
    return CaseFacts.model_validate({**FACTS.model_dump(mode="json"), **facts})


def corrected(after: CaseFacts | None = None, reached: tuple[Stage, ...] = (Stage.filing,)) -> Any:
    """A correction as the registry makes it, from FACTS on FARMLAND to `after`."""
    change = correct(CATALOGUE, reached, (FARMLAND, FACTS), (FARMLAND, after or FACTS))
    return CaseCorrected(
        case_id=CASE,
        parcels=FARMLAND,
        facts=after,
        reason="resurveyed",
        starts=change.starts,
        ends=change.ends,
    )


def clue() -> ClueReported:
    return ClueReported(
        clue_id="CL-1",
        source="satellite",
        township="duizhen",
        location="兑镇某村",
        description="新建厂房占用耕地",
        reported_on=date(2026, 10, 1),
    )


def rectified() -> RectificationRecorded:
    return RectificationRecorded(case_id=CASE, action="demolition", completed_on=date(2027, 1, 5))


def everywhere(payload: Payload) -> list[tuple[str, Effect]]:
    return [(d.code, effect) for d in DEPARTMENTS for effect in effects(d, payload)]


def applied(payload: Payload) -> set[tuple[str, str]]:
    found = everywhere(payload)
    assert all(isinstance(effect, Apply) for _, effect in found)
    return {(code, effect.measure.code) for code, effect in found}


def lifted(payload: Payload, reason: str) -> set[tuple[str, str]]:
    found = everywhere(payload)
    assert all(isinstance(effect, Lift) and effect.reason == reason for _, effect in found)
    return {(code, effect.measure.code) for code, effect in found}


def owners(decisions: list[MeasureDecision]) -> set[tuple[str, str]]:
    """Every department that holds one of these measures, with the measure."""
    codes = {d.measure for d in decisions}
    return {(d.code, m.code) for d in DEPARTMENTS for m in d.measures if m.code in codes}


def all_measures() -> set[tuple[str, str]]:
    return {(d.code, m.code) for d in DEPARTMENTS for m in d.measures}


# --- case.filed ----------------------------------------------------------------------


def test_case_filed_applies_exactly_the_decided_measures() -> None:
    case = filed()
    assert applied(case) == owners(case.starts)
    assert ("power_supply", "refuse_power_supply") in applied(case)
    assert ("housing", "halt_works") in applied(case)
    assert ("transport", "halt_transport_works") not in applied(case)  # no sector recorded
    assert ("development_reform", "publish_credit_record") not in applied(case)
    assert ("forestry", "refuse_afforestation_subsidy") not in applied(case)  # no trees


@pytest.mark.parametrize("department", DEPARTMENTS, ids=lambda d: d.code)
def test_case_filed_per_department_carries_the_registrys_decision(department: Department) -> None:
    case = filed()
    by_code = {d.measure: d for d in case.starts}
    assert effects(department, case) == [
        Apply(m, by_code[m.code]) for m in department.measures if m.code in by_code
    ]


def test_an_event_without_decisions_starts_nothing_whatever_its_land() -> None:
    # The registry decides; a department never applies on its own reading of the case.
    assert everywhere(filed().model_copy(update={"starts": []})) == []


def test_a_case_on_unused_land_starts_nothing_anywhere() -> None:
    case = filed(parcels=[{"land_class": "unused", "area_mu": "0.5"}])
    assert case.starts == []
    assert everywhere(case) == []


def test_a_residence_with_no_project_starts_only_the_subject_measures_of_farmland() -> None:
    case = filed(facts={"site": {"location": "兑镇东村", "real_estate_unit": new_unit_code()}})
    assert applied(case) == owners(case.starts)
    assert all(d.target == "subject" for d in case.starts)
    assert ("power_supply", "refuse_power_supply") not in applied(case)
    assert ("approvals", "refuse_construction_permit") not in applied(case)
    assert ("finance", "refuse_fiscal_funding") in applied(case)


def test_emergency_shares_licence_and_funding_measures() -> None:
    department = CATALOGUE.department("emergency")
    assert [e.measure.code for e in effects(department, filed())] == [
        "refuse_licence",
        "refuse_funding",
    ]


# --- penalty, accountability, confiscation ---------------------------------------------


def test_penalty_decided_publishes_the_credit_record_only() -> None:
    assert applied(penalty()) == {("development_reform", "publish_credit_record")}


def test_accountability_triggered_starts_no_measure_its_referrals_are_workflows() -> None:
    assert accountability().starts == []
    assert applied(accountability()) == set()
    assert not {"discipline", "organization", "public_security"} & set(CATALOGUE.codes)


@pytest.mark.parametrize(
    ("sector", "department", "measure"),
    [
        ("transport", "transport", "halt_transport_works"),
        ("water", "water_resources", "supervise_water_project_land_procedures"),
    ],
)
def test_a_transport_or_water_project_starts_its_departments_measure(
    sector: str, department: str, measure: str
) -> None:
    facts = business_premises_facts()
    case = filed(facts={**facts, "project": {**facts["project"], "sector": sector}})
    assert (department, measure) in applied(case)
    assert applied(case) == owners(case.starts)
    others = {"transport", "water_resources"} - {department}
    assert not {code for code, _ in applied(case)} & others


def test_confiscation_completed_ends_the_blocks_and_tells_finance() -> None:
    found = everywhere(confiscated())
    applies = {(c, e.measure.code) for c, e in found if isinstance(e, Apply)}
    lifts = {(c, e.measure.code) for c, e in found if isinstance(e, Lift)}
    assert applies == {("finance", "supervise_confiscated_property")}
    assert all(e.reason == "confiscation_completed" for _, e in found if isinstance(e, Lift))
    assert ("power_supply", "refuse_power_supply") in lifts
    assert ("finance", "refuse_fiscal_funding") in lifts
    assert not lifts & REFERRALS
    # Lifts come first, then what the confiscation starts.
    finance = effects(CATALOGUE.department("finance"), confiscated())
    assert [type(e).__name__ for e in finance] == ["Lift", "Apply"]


# --- lifts ---------------------------------------------------------------------------


def test_restoration_lifts_the_blocks_but_not_the_referrals() -> None:
    lifts = lifted(restored(), LiftTrigger.restoration_verified.value)
    assert lifts == all_measures() - REFERRALS
    assert ("power_supply", "refuse_power_supply") in lifts


def test_revocation_lifts_every_measure() -> None:
    assert lifted(revoked(), LiftTrigger.revoked.value) == all_measures()


def test_land_procedures_lift_the_halt_but_not_the_records_or_referrals() -> None:
    lifts = lifted(procedures(), LiftTrigger.land_procedures_obtained.value)
    assert ("housing", "halt_works") in lifts
    assert ("approvals", "refuse_construction_permit") in lifts
    assert ("power_supply", "refuse_power_supply") in lifts
    assert ("transport", "halt_transport_works") in lifts
    assert ("water_resources", "supervise_water_project_land_procedures") in lifts
    assert ("development_reform", "publish_credit_record") not in lifts
    assert ("forestry", "refuse_afforestation_subsidy") not in lifts  # the land, not a permit


@pytest.mark.parametrize(
    ("payload", "trigger"),
    [
        (restored, LiftTrigger.restoration_verified),
        (revoked, LiftTrigger.revoked),
        (procedures, LiftTrigger.land_procedures_obtained),
    ],
    ids=["restoration", "revocation", "land_procedures"],
)
@pytest.mark.parametrize("department", DEPARTMENTS, ids=lambda d: d.code)
def test_lifts_per_department(department: Department, payload: Any, trigger: LiftTrigger) -> None:
    assert effects(department, payload()) == [
        Lift(m, trigger.value) for m in department.measures if trigger in m.lifted_by
    ]


# --- corrections ---------------------------------------------------------------------


def test_a_correction_that_ends_a_condition_lifts_with_reason_corrected() -> None:
    correction = corrected(changed(building_use="residence"))
    assert "refuse_licence" in correction.ends
    found = everywhere(correction)
    assert ("emergency", Lift(CATALOGUE.department("emergency").measures[0], CORRECTED)) in found
    assert not [e for _, e in found if isinstance(e, Apply)]  # nothing moved or started


def test_a_correction_that_moves_the_site_lifts_then_applies_at_the_new_one() -> None:
    moved = changed(site={"location": "兑镇西村", "real_estate_unit": new_unit_code()})
    power = CATALOGUE.department("power_supply")
    found = effects(power, corrected(moved))
    measure = power.measure("refuse_power_supply")
    assert [type(e).__name__ for e in found] == ["Lift", "Apply"]
    assert found[0] == Lift(measure, CORRECTED)
    assert isinstance(found[1], Apply) and found[1].measure == measure
    # A subject-targeted measure does not move with the site.
    assert effects(CATALOGUE.department("banks"), corrected(moved)) == []


def test_a_correction_of_the_parcels_only_changes_no_measure() -> None:
    assert everywhere(corrected()) == []


# --- events that change no measure ---------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [closed(), clue(), rectified()],
    ids=["closed", "clue", "rectification"],
)
def test_other_events_have_no_effects(payload: Payload) -> None:
    assert everywhere(payload) == []


def test_the_table_covers_exactly_the_acting_event_types() -> None:
    assert set(RULES) == {
        CaseFiled,
        PenaltyDecided,
        AccountabilityTriggered,
        CaseCorrected,
        RestorationVerified,
        CaseRevoked,
        LandProceduresObtained,
        ConfiscationCompleted,
    }
