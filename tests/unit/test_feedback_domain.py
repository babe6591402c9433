"""What the feedback tracker says each department owes, from the decisions in the events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from events.authorities import (
    FEEDBACK_TRACKER,
    NATURAL_RESOURCES,
    demo_subscriber,
    department_authority,
    subscriber_authority,
)
from events.catalogue import LiftTrigger, load_catalogue
from events.decisions import lifted_by
from events.land import LandClass
from events.models import (
    CaseCorrected,
    CaseFiled,
    ConfiscationCompleted,
    LandProceduresObtained,
    MeasureDecision,
    Parcel,
    Payload,
    RectificationRecorded,
    RestorationVerified,
)
from services.feedback.domain import Action, Answerers, Requirement, in_order, requirements
from tests.support import business_premises_facts, case_body, filed_event

CATALOGUE = load_catalogue()
AT = datetime(2026, 11, 1, 8, tzinfo=UTC)
FARMLAND = [Parcel(land_class=LandClass.cultivated, area_mu=Decimal("1.5"))]


def _owners(code: str) -> set[str]:
    return {d.code for d in CATALOGUE.departments if any(m.code == code for m in d.measures)}


def _filed(facts: dict[str, object], land: str = "cultivated") -> CaseFiled:
    return filed_event(case_body((land, "1.5"), facts=facts), "RL-1")


def _owed(payload: Payload) -> set[tuple[str, str, str]]:
    return {(r.department, r.measure, r.action) for r in _requirements(payload)}


def test_every_owner_of_a_started_measure_owes_an_apply() -> None:
    filed = _filed(business_premises_facts())
    owed = _owed(filed)
    expected = {
        (department, decision.measure, "apply")
        for decision in filed.starts
        for department in _owners(decision.measure)
    }
    assert owed == expected
    # a measure several departments share is owed by each of them
    assert len(_owners("refuse_funding")) > 3
    assert {d for d, m, _ in owed if m == "refuse_funding"} == _owners("refuse_funding")


def test_a_case_whose_facts_call_for_nothing_owes_nothing() -> None:
    residence_on_unused_land = _filed(
        {"site": {"location": "东关村北侧民房"}, "building_use": "residence"}, land="unused"
    )
    assert residence_on_unused_land.starts == []
    assert _owed(residence_on_unused_land) == set()


def test_a_residence_owes_only_the_subject_measures() -> None:
    filed = _filed({"site": {"location": "东关村北侧民房"}, "building_use": "residence"})
    measures = {m for _, m, _ in _owed(filed)}
    assert measures == {"refuse_funding", "refuse_fiscal_funding"}


def test_a_correction_owes_lifts_for_its_ends_before_applies_for_its_starts() -> None:
    moved = MeasureDecision(measure="refuse_power_supply", target="site", rule="r")
    corrected = CaseCorrected(
        case_id="RL-1",
        parcels=FARMLAND,
        reason="resurvey",
        starts=[moved],
        ends=["refuse_power_supply", "refuse_licence"],
    )
    owed = requirements(CATALOGUE, corrected, AT, "e2")
    assert [r.action for r in owed] == sorted(r.action for r in owed)[::-1]  # lifts first
    lifts = {(r.department, r.measure) for r in owed if r.action == "lift"}
    assert lifts == {("power_supply", "refuse_power_supply")} | {
        (d, "refuse_licence") for d in _owners("refuse_licence")
    }
    assert [(r.department, r.measure) for r in owed if r.action == "apply"] == [
        ("power_supply", "refuse_power_supply")
    ]


def test_an_end_condition_offers_a_lift_for_every_measure_it_lifts() -> None:
    """Candidates only: the store keeps those whose apply was owed and not lifted since."""
    obtained = LandProceduresObtained(
        case_id="RL-1", approval_no="晋政地〔2026〕1号", approved_on=date(2026, 11, 1),
        approved_by="山西省人民政府",
    )  # fmt: skip
    owed = requirements(CATALOGUE, obtained, AT, "e3")
    assert {r.action for r in owed} == {"lift"}
    assert {r.measure for r in owed} == set(
        lifted_by(CATALOGUE, LiftTrigger.land_procedures_obtained)
    )
    assert "halt_works" in {r.measure for r in owed}
    assert "refuse_afforestation_subsidy" not in {r.measure for r in owed}  # restoration only
    restored = RestorationVerified(
        case_id="RL-1", verified_on=date(2026, 11, 1),
        natural_resources_officer="李明", agriculture_officer="王芳",
    )  # fmt: skip
    assert "refuse_afforestation_subsidy" in {r.measure for r in _requirements(restored)}


def _requirements(payload: Payload) -> list[Requirement]:
    return requirements(CATALOGUE, payload, AT, "e")


def test_confiscation_lifts_then_tells_finance() -> None:
    supervise = MeasureDecision(
        measure="supervise_confiscated_property", target="site", rule="land in cultivated"
    )
    completed = ConfiscationCompleted(
        case_id="RL-1", decision_no="孝自然资罚〔2026〕7号", completed_on=date(2026, 11, 1),
        property="厂房", starts=[supervise],
    )  # fmt: skip
    owed = _requirements(completed)
    assert owed[-1].action == "apply"
    assert (owed[-1].department, owed[-1].measure) == ("finance", supervise.measure)
    assert all(r.action == "lift" for r in owed[:-1])
    assert "refuse_loans" in {r.measure for r in owed[:-1]}


def test_deadlines_come_from_the_catalogue_and_events_without_measures_owe_nothing() -> None:
    filed = _filed(business_premises_facts())
    for requirement in _requirements(filed):
        hours = CATALOGUE.measures()[requirement.measure].response_deadline_hours
        assert requirement.due_at - requirement.required_at == timedelta(hours=hours)
    rectified = RectificationRecorded(
        case_id="RL-1", action="demolition", completed_on=date(2026, 11, 1)
    )
    assert _requirements(rectified) == []


def _r(case: str, measure: str, action: Action, by: str = "e") -> Requirement:
    return Requirement(case, "banks", measure, action, AT, AT, by)


def test_waves_keep_each_cases_order_and_one_requirement_per_key() -> None:
    required = [
        _r("A", "m1", "apply"),
        _r("B", "m1", "lift"),
        _r("A", "m1", "lift", "e2"),
        _r("A", "m1", "lift", "e3"),  # the same key again in the same wave: the first stays
        _r("A", "m1", "apply", "e4"),
        _r("B", "m2", "lift"),
    ]
    waves = in_order(required)
    assert [[(r.case_id, r.action, r.required_by) for r in wave] for wave in waves] == [
        [("A", "apply", "e"), ("B", "lift", "e"), ("B", "lift", "e")],
        [("A", "lift", "e2")],
        [("A", "apply", "e4")],
    ]
    assert in_order([]) == []


# --- who may answer for a measure ------------------------------------------------------

ANSWERERS = Answerers.of(CATALOGUE)


def test_a_department_answers_for_its_own_measures_only() -> None:
    power = department_authority("power_supply").source
    assert ANSWERERS.refusal(power, "power_supply", "refuse_power_supply") is None
    assert ANSWERERS.refusal(power, "banks", "refuse_loans") == (
        f"{power} answers for power_supply, not for banks"
    )
    assert ANSWERERS.refusal(power, "power_supply", "refuse_loans") == (
        "refuse_loans is not a measure of power_supply"
    )


def test_a_measure_every_department_shares_is_answered_by_each_for_itself() -> None:
    finance, housing = (department_authority(code).source for code in ("finance", "housing"))
    assert ANSWERERS.refusal(finance, "finance", "refuse_fiscal_funding") is None
    assert ANSWERERS.refusal(housing, "finance", "refuse_fiscal_funding") is not None


def test_a_subscriber_answers_for_the_department_it_subscribes_for() -> None:
    subscriber = demo_subscriber("power_supply").source
    assert ANSWERERS.refusal(subscriber, "power_supply", "refuse_power_supply") is None
    assert ANSWERERS.refusal(subscriber, "water_supply", "refuse_water_supply") is not None


def test_an_authority_bound_to_no_department_answers_for_none() -> None:
    for source in (NATURAL_RESOURCES.source, FEEDBACK_TRACKER.source, "/authorities/stranger"):
        assert ANSWERERS.refusal(source, "banks", "refuse_loans") == (
            f"{source} answers for no department's measures"
        )


def test_a_named_subscriber_is_bound_to_a_utility_or_bank_only() -> None:
    answerers = Answerers.of(CATALOGUE, {"xiaoyi_power_company": "power_supply"})
    source = subscriber_authority("xiaoyi_power_company").source
    assert answerers.refusal(source, "power_supply", "refuse_power_supply") is None
    assert answerers.refusal(source, "banks", "refuse_loans") is not None
    with pytest.raises(ValueError, match="not a utility or bank department"):
        Answerers.of(CATALOGUE, {"impostor": "discipline"})
