"""The case lifecycle, the joint restoration sign-off and the accountability threshold,
as pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from events.catalogue import Stage, load_catalogue
from events.land import LandClass
from events.models import Parcel
from services.access import Role
from services.errors import InvalidInput
from services.registry.domain import (
    AlreadySigned,
    CaseStatus,
    IllegalTransition,
    JointVerification,
    NotASignatory,
    SigningBody,
    SignOff,
    Step,
    check_accountability,
    measure_history,
    next_status,
    sign_off_restoration,
    signing_body,
    stages_reached,
    standing_sign_offs,
)
from services.registry.ports import CaseRecord

S = CaseStatus


@pytest.mark.parametrize(
    ("current", "step", "expected"),
    [
        (S.filed, Step.penalty, S.penalty_decided),
        (S.penalty_decided, Step.rectification, S.rectified),
        (S.rectified, Step.rectification, S.rectified),
        (S.rectified, Step.restoration, S.restored),
        (S.restored, Step.closure, S.closed),
        (S.filed, Step.revocation, S.revoked),
        (S.rectified, Step.revocation, S.revoked),
        (S.revoked, Step.closure, S.closed),
        (S.penalty_decided, Step.correction, S.penalty_decided),
        (S.filed, Step.land_procedures, S.legalised),
        (S.penalty_decided, Step.land_procedures, S.legalised),
        (S.rectified, Step.land_procedures, S.legalised),
        (S.legalised, Step.closure, S.closed),
        (S.penalty_decided, Step.confiscation, S.confiscated),
        (S.rectified, Step.confiscation, S.confiscated),
    ],
)
def test_legal_steps_lead_to_their_state(current: S, step: Step, expected: S) -> None:
    assert next_status(current, step) is expected


@pytest.mark.parametrize(
    ("current", "step"),
    [
        (S.filed, Step.restoration),
        (S.filed, Step.rectification),
        (S.filed, Step.closure),
        (S.penalty_decided, Step.penalty),
        (S.restored, Step.revocation),
        (S.closed, Step.penalty),
        (S.closed, Step.correction),
        (S.revoked, Step.restoration),
        (S.legalised, Step.correction),  # no longer open
        (S.legalised, Step.land_procedures),
        (S.legalised, Step.revocation),
        (S.restored, Step.land_procedures),
        (S.filed, Step.confiscation),  # confiscation carries out a penalty decision
        (S.legalised, Step.confiscation),
        (S.confiscated, Step.closure),  # the case ended with the confiscation
        (S.confiscated, Step.correction),
        (S.confiscated, Step.revocation),
        (S.confiscated, Step.confiscation),
    ],
)
def test_illegal_steps_name_the_current_and_the_needed_state(current: S, step: Step) -> None:
    with pytest.raises(IllegalTransition) as refused:
        next_status(current, step)
    message = str(refused.value)
    assert f"cannot record {step}" in message
    assert f"case that is {current}" in message


def test_restoration_before_filing_steps_says_what_it_needs() -> None:
    with pytest.raises(IllegalTransition, match="restoration needs the case to be rectified"):
        next_status(S.filed, Step.restoration)


def test_confiscation_names_both_states_it_may_follow() -> None:
    with pytest.raises(IllegalTransition) as refused:
        next_status(S.filed, Step.confiscation)
    assert str(refused.value) == (
        "cannot record confiscation on a case that is filed; "
        "confiscation needs the case to be penalty_decided or rectified"
    )


def test_a_confiscated_case_has_ended() -> None:
    """Terminal: no step at all may follow it."""
    for step in Step:
        with pytest.raises(IllegalTransition):
            next_status(S.confiscated, step)


@pytest.mark.parametrize(
    ("status", "accountability", "stages"),
    [
        (S.filed, False, (Stage.filing,)),
        (S.filed, True, (Stage.filing, Stage.accountability)),
        (S.penalty_decided, False, (Stage.filing, Stage.penalty)),
        (S.rectified, True, (Stage.filing, Stage.penalty, Stage.accountability)),
    ],
)
def test_a_correction_decides_again_the_stages_the_case_reached(
    status: S, accountability: bool, stages: tuple[Stage, ...]
) -> None:
    assert stages_reached(status, accountability) == stages


def _record(step: str, event_id: str, at: datetime, data: dict[str, Any]) -> CaseRecord:
    """A case record as the registry's store reads it back (its seq and type unused here)."""
    return CaseRecord(0, step, event_id, f"redline.case.{step}", data, at)


def _decision(code: str) -> dict[str, Any]:
    measure = CATALOGUE.measures()[code]
    return {"measure": code, "target": measure.targets, "land": ["cultivated"], "rule": "r"}


CATALOGUE = load_catalogue()
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def test_the_history_shows_what_started_what_ended_and_why() -> None:
    records = [
        _record("filing", "e1", _at(0), {"starts": [_decision(c) for c in ("halt_works",
                "refuse_power_supply", "refuse_afforestation_subsidy")]}),
        _record("correction", "e2", _at(1), {"ends": ["refuse_power_supply"],
                "starts": [_decision("refuse_power_supply")]}),
        _record("penalty", "e3", _at(2), {"starts": [_decision("publish_credit_record")]}),
        _record("land_procedures", "e4", _at(3), {"approval_no": "晋政地〔2026〕1号"}),
    ]  # fmt: skip
    spells = measure_history(CATALOGUE, records)
    by_start = {(s.decision.measure, s.started_event): s for s in spells}
    assert len(spells) == 5
    moved = by_start["refuse_power_supply", "e1"]
    assert (moved.ended_by, moved.ended_event, moved.ended_at) == ("corrected", "e2", _at(1))
    again = by_start["refuse_power_supply", "e2"]
    assert (again.started_by, again.ended_by) == ("correction", "land_procedures_obtained")
    assert by_start["halt_works", "e1"].ended_by == "land_procedures_obtained"
    # restoration alone lifts the afforestation subsidy; revocation alone the credit record
    assert by_start["refuse_afforestation_subsidy", "e1"].ended_by is None
    assert by_start["publish_credit_record", "e3"].ended_by is None


def test_confiscation_ends_the_blocks_then_starts_finance_supervision() -> None:
    supervise = "supervise_confiscated_property"
    records = [
        _record("filing", "e1", _at(0), {"starts": [_decision("refuse_loans")]}),
        _record("confiscation", "e2", _at(5), {"starts": [_decision(supervise)]}),
    ]
    spells = {s.decision.measure: s for s in measure_history(CATALOGUE, records)}
    assert spells["refuse_loans"].ended_by == "confiscation_completed"
    assert spells[supervise].ended_by is None
    assert spells[supervise].started_at == _at(5)


def test_a_case_filed_before_facts_has_no_history() -> None:
    records = [_record("filing", "e1", _at(0), {"parcels": []})]
    assert measure_history(CATALOGUE, records) == []


def _parcels(*pairs: tuple[LandClass, str]) -> list[Parcel]:
    return [Parcel(land_class=cls, area_mu=Decimal(area)) for cls, area in pairs]


BASIC = LandClass.permanent_basic_farmland
CULTIVATED = LandClass.cultivated


@pytest.mark.parametrize(
    ("parcels", "due"),
    [
        (_parcels((BASIC, "4.99")), False),
        (_parcels((BASIC, "5")), True),
        (_parcels((BASIC, "5.01")), True),
        (_parcels((CULTIVATED, "9.99")), False),
        (_parcels((CULTIVATED, "10")), True),
        (_parcels((BASIC, "3"), (CULTIVATED, "7")), True),
        (_parcels((BASIC, "3"), (CULTIVATED, "6.999999")), False),
        (_parcels((LandClass.construction, "50"), (LandClass.unused, "50")), False),
        (_parcels((BASIC, "2.5"), (BASIC, "2.5")), True),
    ],
)
def test_accountability_threshold_includes_its_bound(parcels: list[Parcel], due: bool) -> None:
    assert check_accountability(parcels).due is due


def test_the_rule_says_which_bound_was_met() -> None:
    check = check_accountability(_parcels((BASIC, "3"), (CULTIVATED, "7")))
    assert check.cultivated_mu == Decimal("10")
    assert check.basic_farmland_mu == Decimal("3")
    assert check.reasons == ["cultivated land 10 mu >= 10 mu (permanent basic farmland included)"]
    assert check.rule.startswith("seed §四(五): ")


DAY = date(2026, 11, 10)
NR = SignOff(SigningBody.natural_resources, "李明", DAY)
AGRI = SignOff(SigningBody.agriculture, "王芳", DAY)


def test_the_role_decides_which_body_signs() -> None:
    assert signing_body(Role.case_officer) is SigningBody.natural_resources
    assert signing_body(Role.agriculture_inspector) is SigningBody.agriculture
    for role in (Role.operator, Role.department, Role.subscriber):
        with pytest.raises(NotASignatory, match=f"{role} signs no restoration"):
            signing_body(role)


@pytest.mark.parametrize("first", [NR, AGRI])
def test_one_sign_off_does_not_restore(first: SignOff) -> None:
    assert sign_off_restoration(S.rectified, [], first) is None


@pytest.mark.parametrize(("first", "second"), [(NR, AGRI), (AGRI, NR)])
def test_the_other_body_completes_it_in_either_order(first: SignOff, second: SignOff) -> None:
    assert sign_off_restoration(S.rectified, [first], second) == JointVerification(
        verified_on=DAY, natural_resources_officer="李明", agriculture_officer="王芳"
    )


@pytest.mark.parametrize("signed", [NR, AGRI])
def test_the_same_body_twice_is_refused(signed: SignOff) -> None:
    again = SignOff(signed.body, "someone else", DAY)
    with pytest.raises(AlreadySigned, match=f"{signed.body} already signed off"):
        sign_off_restoration(S.rectified, [signed], again)


def test_sign_offs_must_agree_on_the_day() -> None:
    later = SignOff(SigningBody.agriculture, "王芳", date(2026, 11, 11))
    with pytest.raises(InvalidInput) as refused:
        sign_off_restoration(S.rectified, [NR], later)
    assert refused.value.field == "verified_on"
    assert "differs from the natural_resources sign-off's 2026-11-10" in refused.value.reason


@pytest.mark.parametrize("status", [S.filed, S.penalty_decided, S.restored, S.revoked, S.closed])
def test_only_a_rectified_case_is_signed_off(status: S) -> None:
    with pytest.raises(IllegalTransition, match="restoration needs the case to be rectified"):
        sign_off_restoration(status, [], NR)


def test_a_body_corrects_its_own_date_before_the_other_signs() -> None:
    corrected = SignOff(SigningBody.natural_resources, "张伟", date(2026, 11, 12))
    assert sign_off_restoration(S.rectified, [NR], corrected) is None  # no AlreadySigned
    assert standing_sign_offs([NR], corrected) == [corrected]  # it replaces NR's first
    agri = SignOff(SigningBody.agriculture, "王芳", date(2026, 11, 12))
    assert sign_off_restoration(S.rectified, [corrected], agri) == JointVerification(
        verified_on=date(2026, 11, 12), natural_resources_officer="张伟", agriculture_officer="王芳"
    )


def test_a_correction_keeps_the_other_bodys_sign_off() -> None:
    assert standing_sign_offs([AGRI], NR) == [AGRI, NR]


@pytest.mark.parametrize("signed_on", [date(2026, 11, 1), DAY])
def test_the_restoration_is_verified_on_or_after_the_rectification(signed_on: date) -> None:
    new = SignOff(SigningBody.agriculture, "王芳", signed_on)
    assert sign_off_restoration(S.rectified, [], new, rectified_on=date(2026, 11, 1)) is None
    with pytest.raises(InvalidInput) as refused:
        sign_off_restoration(S.rectified, [], new, rectified_on=signed_on + timedelta(days=1))
    assert refused.value.field == "verified_on"
    assert f"precedes the rectification completed on {signed_on + timedelta(days=1)}" in (
        refused.value.reason
    )
