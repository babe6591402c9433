"""The pure rules table: which measures each event type starts or lifts, per department."""

from __future__ import annotations

from datetime import date

import pytest

from events.catalogue import Department, LiftTrigger, Stage, load_catalogue
from events.models import (
    AccountabilityTriggered,
    CaseClosed,
    CaseCorrected,
    CaseFiled,
    CaseRevoked,
    ClueReported,
    Payload,
    PenaltyDecided,
    RectificationRecorded,
    RestorationVerified,
)
from services.departments.domain import RULES, Apply, Effect, Lift, effects
from tests.support import case_body

CASE = "XY-2026-0001"
CATALOGUE = load_catalogue()
DEPARTMENTS = CATALOGUE.departments

# Measures that are referrals or records rather than blocks: only a revocation lifts them.
REFERRALS = {
    ("development_reform", "publish_credit_record"),
    ("housing", "refer_unpermitted_construction"),
    ("public_security", "receive_criminal_referral"),
    ("discipline", "accountability_referral"),
    ("organization", "record_for_cadre_evaluation"),
}


def filed() -> CaseFiled:
    return CaseFiled.model_validate(
        {**case_body(("permanent_basic_farmland", "6")), "case_id": CASE}
    )


def penalty() -> PenaltyDecided:
    return PenaltyDecided(
        case_id=CASE,
        decision_no="孝自然资罚〔2026〕12号",
        decided_on=date(2026, 11, 2),
        fine_yuan="120000.00",
        summary="限期拆除，恢复耕地原状，并处罚款",
    )


def accountability() -> AccountabilityTriggered:
    return AccountabilityTriggered(
        case_id=CASE,
        township="duizhen",
        basic_farmland_mu="6",
        cultivated_mu="6",
        rule="seed §四(五): 5 mu of permanent basic farmland or more",
    )


def restored() -> RestorationVerified:
    return RestorationVerified(
        case_id=CASE,
        verified_on=date(2027, 3, 1),
        natural_resources_officer="王某",
        agriculture_officer="李某",
    )


def revoked() -> CaseRevoked:
    return CaseRevoked(
        case_id=CASE,
        court="孝义市人民法院",
        decision_no="(2027)晋1181行初5号",
        revoked_on=date(2027, 4, 1),
    )


def closed() -> CaseClosed:
    return CaseClosed(case_id=CASE, closed_on=date(2027, 5, 1), reason="restored and verified")


def corrected() -> CaseCorrected:
    return CaseCorrected.model_validate(
        {
            "case_id": CASE,
            "parcels": [{"land_class": "cultivated", "area_mu": "12"}],
            "reason": "resurveyed",
        }
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


def lifted(payload: Payload, reason: LiftTrigger) -> set[tuple[str, str]]:
    found = everywhere(payload)
    assert all(isinstance(effect, Lift) and effect.reason is reason for _, effect in found)
    return {(code, effect.measure.code) for code, effect in found}


def all_measures() -> set[tuple[str, str]]:
    return {(d.code, m.code) for d in DEPARTMENTS for m in d.measures}


# --- case.filed ----------------------------------------------------------------------


def test_case_filed_applies_the_filing_measures_only() -> None:
    expected = {
        (d.code, m.code) for d in DEPARTMENTS for m in d.measures if m.starts_at is Stage.filing
    }
    assert applied(filed()) == expected
    assert ("power_supply", "refuse_power_supply") in expected
    assert ("housing", "refer_unpermitted_construction") in expected
    assert ("development_reform", "publish_credit_record") not in expected
    assert not {"discipline", "organization", "public_security"} & {c for c, _ in expected}


@pytest.mark.parametrize("department", DEPARTMENTS, ids=lambda d: d.code)
def test_case_filed_per_department(department: Department) -> None:
    assert effects(department, filed()) == [
        Apply(m) for m in department.measures if m.starts_at is Stage.filing
    ]


def test_emergency_shares_licence_and_funding_measures() -> None:
    department = CATALOGUE.department("emergency")
    assert [e.measure.code for e in effects(department, filed())] == [
        "refuse_licence",
        "refuse_funding",
    ]


# --- penalty and accountability ------------------------------------------------------


def test_penalty_decided_publishes_the_credit_record_only() -> None:
    assert applied(penalty()) == {("development_reform", "publish_credit_record")}


def test_accountability_triggered_starts_discipline_organization_public_security() -> None:
    assert applied(accountability()) == {
        ("discipline", "accountability_referral"),
        ("organization", "record_for_cadre_evaluation"),
        ("public_security", "receive_criminal_referral"),
    }


# --- lifts ---------------------------------------------------------------------------


def test_restoration_lifts_the_blocks_but_not_the_referrals() -> None:
    lifts = lifted(restored(), LiftTrigger.restoration_verified)
    assert lifts == all_measures() - REFERRALS
    assert not lifts & REFERRALS
    assert ("power_supply", "refuse_power_supply") in lifts


def test_revocation_lifts_every_measure() -> None:
    assert lifted(revoked(), LiftTrigger.revoked) == all_measures()


@pytest.mark.parametrize("department", DEPARTMENTS, ids=lambda d: d.code)
def test_lifts_per_department(department: Department) -> None:
    assert effects(department, restored()) == [
        Lift(m, LiftTrigger.restoration_verified)
        for m in department.measures
        if LiftTrigger.restoration_verified in m.lifted_by
    ]
    assert effects(department, revoked()) == [
        Lift(m, LiftTrigger.revoked) for m in department.measures
    ]


# --- events that change no measure ---------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [closed(), corrected(), clue(), rectified()],
    ids=["closed", "corrected", "clue", "rectification"],
)
def test_other_events_have_no_effects(payload: Payload) -> None:
    assert everywhere(payload) == []


def test_the_table_covers_exactly_the_five_acting_event_types() -> None:
    assert set(RULES) == {
        CaseFiled,
        PenaltyDecided,
        AccountabilityTriggered,
        RestorationVerified,
        CaseRevoked,
    }
