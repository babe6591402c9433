from decimal import Decimal
from typing import Any

import pytest

from events.catalogue import Target
from events.decisions import UNRECORDED_FACTS
from events.errors import UnknownEventType
from events.land import LandClass
from events.models import (
    PAYLOAD_TYPES,
    AccountabilityTriggered,
    BlocklistEntry,
    CaseCorrected,
    CaseFiled,
    CaseFiledV1,
    CaseFiledV2,
    MeasureLifted,
    PenaltyDecided,
)
from events.upcasting import CURRENT_TYPES, UPCASTERS, upcast

V1_TO_V2_ONLY = {"redline.case.filed.v1": UPCASTERS["redline.case.filed.v1"]}
V1_PARCEL = {"land_class": "cultivated", "area_mu": "12.5"}

SUBJECT = {"kind": "organization", "id": "91350100M000100Y43", "name": "某公司"}

V1 = {
    "case_id": "C-1",
    "township": "城关镇",
    "subject": SUBJECT,
    "land_class": "cultivated",
    "area_mu": "12.5",
    "violation_kind": "illegal construction",
    "source": "patrol",
    "found_on": "2023-06-01",
    "clue_id": "K-9",
}


def test_case_filed_v1_upcasts_to_an_equal_v2() -> None:
    sent = CaseFiledV1.model_validate(V1).model_dump(mode="json")
    before = dict(sent)
    event_type, data = upcast("redline.case.filed.v1", sent, V1_TO_V2_ONLY)
    assert sent == before, "the input must not be modified"
    assert event_type == "redline.case.filed.v2"
    expected = CaseFiledV2.model_validate(
        {
            **{k: v for k, v in V1.items() if k not in ("land_class", "area_mu")},
            "parcels": [{"land_class": "cultivated", "area_mu": "12.5"}],
        }
    )
    assert CaseFiledV2.model_validate(data) == expected


def test_case_filed_v2_gets_unrecorded_facts_and_only_what_land_alone_starts() -> None:
    v2 = {
        **{k: v for k, v in V1.items() if k not in ("land_class", "area_mu")},
        "parcels": [{"land_class": "cultivated", "area_mu": "12.5"}],
    }
    event_type, data = upcast("redline.case.filed.v2", v2)
    assert event_type == "redline.case.filed.v3"
    case = CaseFiled.model_validate(data)
    assert case.facts == UNRECORDED_FACTS
    # No site, project or building was recorded, so nothing held against them starts.
    assert {d.measure for d in case.starts} == {"refuse_fiscal_funding", "refuse_funding"}
    assert all(d.target is Target.subject for d in case.starts)
    unused = {**v2, "parcels": [{"land_class": "unused", "area_mu": "0.5"}]}
    assert CaseFiled.model_validate(upcast("redline.case.filed.v2", unused)[1]).starts == []


def test_case_filed_v1_reaches_v3_through_the_chain() -> None:
    event_type, data = upcast("redline.case.filed.v1", V1)
    assert event_type == "redline.case.filed.v3"
    assert CaseFiled.model_validate(data).parcels[0].area_mu == Decimal("12.5")


def test_case_corrected_v1_changes_no_measure() -> None:
    v1 = {"case_id": "C-1", "parcels": [V1_PARCEL], "reason": "resurveyed"}
    event_type, data = upcast("redline.case.corrected.v1", v1)
    assert event_type == "redline.case.corrected.v2"
    corrected = CaseCorrected.model_validate(data)
    assert (corrected.facts, corrected.starts, corrected.ends) == (None, [], [])


def test_penalty_v1_starts_every_penalty_measure_as_v1_did() -> None:
    v1 = {
        "case_id": "C-1",
        "decision_no": "孝自然资罚〔2023〕1号",
        "decided_on": "2023-07-01",
        "fine_yuan": "1000",
        "summary": "s",
    }
    event_type, data = upcast("redline.case.penalty_decided.v1", v1)
    assert event_type == "redline.case.penalty_decided.v2"
    penalty = PenaltyDecided.model_validate(data)
    assert [d.measure for d in penalty.starts] == ["publish_credit_record"]
    assert "upcast" in penalty.starts[0].rule


@pytest.mark.parametrize(
    ("basic", "cultivated", "land"),
    [
        ("5", "5", {LandClass.permanent_basic_farmland, LandClass.cultivated}),
        ("5", "0", {LandClass.permanent_basic_farmland}),
        ("0", "10", {LandClass.cultivated}),
    ],
)
def test_accountability_v1_starts_the_referrals_on_the_land_its_areas_name(
    basic: str, cultivated: str, land: set[LandClass]
) -> None:
    v1 = {
        "case_id": "C-1",
        "township": "城关镇",
        "basic_farmland_mu": basic,
        "cultivated_mu": cultivated,
        "rule": "seed §四(五)",
        "addressed_to": ["discipline", "organization"],
    }
    event_type, data = upcast("redline.accountability.triggered.v1", v1)
    assert event_type == "redline.accountability.triggered.v2"
    triggered = AccountabilityTriggered.model_validate(data)
    assert {d.measure for d in triggered.starts} == {
        "receive_criminal_referral",
        "accountability_referral",
        "record_for_cadre_evaluation",
    }
    assert all(set(d.land) == land for d in triggered.starts)


def test_measure_lifted_v1_is_a_valid_v2() -> None:
    v1 = {
        "case_id": "C-1",
        "department": "banks",
        "measure": "refuse_loans",
        "reason": "revoked",
        "lifted_at": "2023-07-01T00:00:00+08:00",
        "caused_by": "e-1",
    }
    event_type, data = upcast("redline.measure.lifted.v1", v1)
    assert event_type == "redline.measure.lifted.v2"
    assert MeasureLifted.model_validate(data).reason == "revoked"


@pytest.mark.parametrize(
    ("measure", "target"), [("refuse_power_supply", "site"), ("refuse_loans", "subject")]
)
def test_blocklist_entry_v1_takes_the_catalogue_target(measure: str, target: str) -> None:
    v1 = {
        "measure": measure,
        "department": "x",
        "subject_hash": "ab" * 32,
        "key_id": "cd" * 8,
        "subject_kind": "person",
        "masked_name": "张*",
        "cases": [{"case_id": "C-1", "legal_basis": "seed", "since": "2023-07-01T00:00:00Z"}],
    }
    event_type, data = upcast("redline.blocklist.entry.v1", v1)
    assert event_type == "redline.blocklist.entry.v2"
    entry = BlocklistEntry.model_validate(data)
    assert entry.target == target
    # v1 named no site: a site-targeted entry matches no site rather than every one.
    assert entry.cases[0].site_hashes == []


def test_current_type_is_unchanged() -> None:
    data = {"a": 1}
    assert upcast("redline.case.closed.v1", data) == ("redline.case.closed.v1", data)


def test_unknown_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        upcast("redline.case.exploded.v1", {})
    assert caught.value.field == "type"


def test_chain_applies_every_step_in_order() -> None:
    def one(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "steps": [*data.get("steps", []), "v1->v2"]}

    def two(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "steps": [*data.get("steps", []), "v2->v3"]}

    registry = {"x.v1": ("x.v2", one), "x.v2": ("x.v3", two)}
    assert upcast("x.v1", {}, registry) == ("x.v3", {"steps": ["v1->v2", "v2->v3"]})
    assert upcast("x.v2", {}, registry) == ("x.v3", {"steps": ["v2->v3"]})


def test_current_types() -> None:
    assert "redline.case.filed.v1" not in CURRENT_TYPES
    assert "redline.case.filed.v2" not in CURRENT_TYPES
    assert "redline.case.filed.v3" in CURRENT_TYPES
    assert set(PAYLOAD_TYPES) - set(UPCASTERS) == CURRENT_TYPES
    for _old, (new, _step) in UPCASTERS.items():
        assert new in PAYLOAD_TYPES
