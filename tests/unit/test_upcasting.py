from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import yaml

from events import upcasting
from events.catalogue import CATALOGUE_FILE, Catalogue, Target, load_catalogue
from events.codec import decode, encode_signed
from events.decisions import UNRECORDED_FACTS
from events.errors import UnknownEventType
from events.land import LandClass
from events.models import (
    PAYLOAD_TYPES,
    AccountabilityTriggered,
    BlocklistEntry,
    BlocklistHeartbeat,
    CaseCorrected,
    CaseFiled,
    CaseFiledV1,
    CaseFiledV2,
    MeasureLifted,
    PenaltyDecided,
)
from events.signing import Signer, TrustedKey, TrustStore
from events.upcasting import CURRENT_TYPES, UPCASTERS, upcast
from services.departments.domain import effects
from services.feedback.domain import requirements
from tests.unit.builders import penalty_data

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
    event_type, data = upcast("redline.case.penalty_decided.v1", penalty_data())
    assert event_type == "redline.case.penalty_decided.v2"
    penalty = PenaltyDecided.model_validate(data)
    assert [d.measure for d in penalty.starts] == ["publish_credit_record"]
    assert "upcast" in penalty.starts[0].rule


ACCOUNTABILITY_V1 = {
    "case_id": "C-1",
    "township": "城关镇",
    "basic_farmland_mu": "5",
    "cultivated_mu": "5",
    "rule": "seed §四(五)",
    "addressed_to": ["discipline", "organization"],
}
# What the threshold started before the referrals left the measures (issue #17).
RETIRED = ("receive_criminal_referral", "accountability_referral", "record_for_cadre_evaluation")


def with_an_accountability_measure() -> Catalogue:
    """The catalogue plus one accountability-stage measure, as it had before issue #17."""
    document = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    [finance] = [d for d in document["departments"] if d["code"] == "finance"]
    finance["measures"].append(
        {
            **finance["measures"][0],
            "code": "record_accountability",
            "starts_at": "accountability",
            "targets": "subject",
        }
    )
    return Catalogue.model_validate(document)


@pytest.mark.parametrize(
    ("basic", "cultivated", "land"),
    [
        ("5", "5", {LandClass.permanent_basic_farmland, LandClass.cultivated}),
        ("5", "0", {LandClass.permanent_basic_farmland}),
        ("0", "10", {LandClass.cultivated}),
    ],
)
def test_accountability_v1_starts_the_stage_measures_on_the_land_its_areas_name(
    basic: str, cultivated: str, land: set[LandClass], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upcasting, "load_catalogue", with_an_accountability_measure)
    v1 = {**ACCOUNTABILITY_V1, "basic_farmland_mu": basic, "cultivated_mu": cultivated}
    event_type, data = upcast("redline.accountability.triggered.v1", v1)
    assert event_type == "redline.accountability.triggered.v2"
    triggered = AccountabilityTriggered.model_validate(data)
    assert [d.measure for d in triggered.starts] == ["record_accountability"]
    assert all(set(d.land) == land for d in triggered.starts)


def test_accountability_v1_starts_no_measure_now_the_referrals_are_workflows() -> None:
    event_type, data = upcast("redline.accountability.triggered.v1", ACCOUNTABILITY_V1)
    assert event_type == "redline.accountability.triggered.v2"
    triggered = AccountabilityTriggered.model_validate(data)
    assert triggered.starts == []
    assert triggered.basic_farmland_mu == Decimal("5")


def test_a_stored_accountability_v2_naming_retired_measures_decodes_and_asks_nothing() -> None:
    """No upcaster: the event keeps what was decided then (the legal record), and nothing
    acts on it, because every consumer looks each decision up in its own catalogue and no
    department owns a retired measure. So it is neither dead-lettered nor owed."""
    catalogue = load_catalogue()
    assert not set(RETIRED) & set(catalogue.measures())
    stored = AccountabilityTriggered.model_validate(
        {
            **ACCOUNTABILITY_V1,
            "starts": [
                {"measure": code, "target": "subject", "land": ["cultivated"], "rule": "r"}
                for code in RETIRED
            ],
        }
    )
    signer = Signer.generate("nr")
    source = "/authorities/natural_resources"
    trust = TrustStore(
        [TrustedKey("nr", "Natural Resources", source, signer.public_key_b64(), ("redline.*",))]
    )
    _, raw = encode_signed(stored, signer, source=source)
    envelope, payload = decode(raw, trust)
    assert envelope.type == "redline.accountability.triggered.v2"
    assert isinstance(payload, AccountabilityTriggered)
    assert [d.measure for d in payload.starts] == list(RETIRED)
    for department in catalogue.departments:
        assert effects(department, payload) == [], department.code
    at = datetime(2026, 12, 1, tzinfo=UTC)
    assert requirements(catalogue, payload, at, envelope.id) == []


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
    assert event_type == "redline.blocklist.entry.v3"
    entry = BlocklistEntry.model_validate(data)
    assert entry.target == target
    # v1 named no site: a site-targeted entry matches no site rather than every one.
    assert entry.cases[0].site_hashes == []
    # Nor a list version: 0, older than any record a versioned builder publishes.
    assert entry.version == 0


def test_a_heartbeat_v1_has_no_list_head_and_so_vouches_for_nothing() -> None:
    v1 = {
        "measure": "refuse_loans",
        "partition": 0,
        "key_id": "cd" * 8,
        "as_of": "2026-01-01T00:00:00Z",
    }
    event_type, data = upcast("redline.blocklist.heartbeat.v1", v1)
    assert event_type == "redline.blocklist.heartbeat.v2"
    beat = BlocklistHeartbeat.model_validate(data)
    assert beat.entries is None and beat.digest is None  # refused by subscribers: no_list_head


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
