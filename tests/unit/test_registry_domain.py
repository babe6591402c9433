"""The case lifecycle, the joint restoration sign-off and the accountability threshold,
as pure rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

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
    next_status,
    sign_off_restoration,
    signing_body,
)

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
