"""The case lifecycle and the accountability threshold, as pure rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from events.land import LandClass
from events.models import Parcel
from services.registry.domain import (
    CaseStatus,
    IllegalTransition,
    Step,
    check_accountability,
    next_status,
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
