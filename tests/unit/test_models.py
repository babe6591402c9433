import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from events.errors import InvalidEvent, invalid_from_validation
from events.land import LandClass, is_cultivated
from events.models import (
    MAX_AREA_TOTAL_MU,
    MAX_MONEY_YUAN,
    PAYLOAD_TYPES,
    AccountabilityTriggered,
    CaseFiled,
    Parcel,
    PenaltyDecided,
    Subject,
)
from events.topics import ALL_TOPICS
from events.upcasting import UPCASTERS
from tests.unit.builders import penalty_data

PARCEL = "141181001002GB00123"
UNIT = PARCEL + "F00010001"
ORG = {"kind": "organization", "id": "91350100M000100Y43", "name": "某某农业开发有限公司"}


def case_data(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "case_id": "C-2024-001",
        "township": "城关镇",
        "subject": ORG,
        "parcels": [{"land_class": "permanent_basic_farmland", "area_mu": "5"}],
        "facts": {"site": {"location": "城关镇北关村", "parcel_code": PARCEL}},
        "violation_kind": "illegal construction",
        "source": "satellite",
        "found_on": "2024-03-01",
    }
    data.update(changes)
    return data


def error_of(model: type, data: object) -> InvalidEvent:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)  # type: ignore[attr-defined]
    return invalid_from_validation(caught.value)


def test_m2_converted_exactly() -> None:
    assert Parcel.model_validate({"land_class": "cultivated", "area_m2": "666.67"}).area_mu == (
        Decimal("1.000005")
    )
    assert Parcel.from_m2(LandClass.cultivated, 6670).area_mu == Decimal("10.005")


def test_float_area_refused_naming_the_field() -> None:
    err = error_of(CaseFiled, case_data(parcels=[{"land_class": "cultivated", "area_mu": 1.5}]))
    assert err.field == "data.parcels.0.area_mu"
    assert "float" in err.reason
    err = error_of(Parcel, {"land_class": "cultivated", "area_m2": 666.67})
    assert "area_m2" in err.reason and "float" in err.reason


@pytest.mark.parametrize("area", ["0", "-1", "100000.000001", "1000000", "1.0000001", "NaN"])
def test_bad_areas_refused(area: str) -> None:
    err = error_of(Parcel, {"land_class": "cultivated", "area_mu": area})
    assert err.field == "data.area_mu"


def test_zero_m2_refused() -> None:
    assert "area_m2" in error_of(Parcel, {"land_class": "unused", "area_m2": "0"}).reason


@pytest.mark.parametrize(
    "parcel",
    [
        {"land_class": "cultivated"},
        {"land_class": "cultivated", "area_mu": "1", "area_m2": "666"},
    ],
)
def test_exactly_one_area_unit(parcel: dict[str, str]) -> None:
    assert "exactly one of area_mu or area_m2" in error_of(Parcel, parcel).reason


def test_empty_subject_name_refused() -> None:
    err = error_of(Subject, {**ORG, "name": "   "})
    assert err.field == "data.name"


def test_person_with_organisation_code_refused_naming_id() -> None:
    err = error_of(CaseFiled, case_data(subject={**ORG, "kind": "person"}))
    assert err.field == "data.subject.id"


def test_organisation_id_normalised() -> None:
    subject = Subject.model_validate({**ORG, "id": " 91350100m000100y43 "})
    assert subject.id == "91350100M000100Y43"


def test_unknown_field_refused() -> None:
    assert error_of(CaseFiled, case_data(extra="x")).field == "data.extra"


def test_decimal_round_trips_as_string() -> None:
    case = CaseFiled.model_validate(
        case_data(parcels=[{"land_class": "cultivated", "area_m2": "6670"}])
    )
    dumped = case.model_dump(mode="json")
    assert dumped["parcels"][0]["area_mu"] == "10.005"
    assert CaseFiled.model_validate(json.loads(json.dumps(dumped))) == case
    fine = PenaltyDecided.model_validate(penalty_data(fine_yuan=Decimal("1E+3")))
    assert fine.model_dump(mode="json")["fine_yuan"] == "1000"


def test_totals_count_basic_farmland_as_cultivated() -> None:
    case = CaseFiled.model_validate(
        case_data(
            parcels=[
                {"land_class": "permanent_basic_farmland", "area_mu": "4.5"},
                {"land_class": "cultivated", "area_mu": "5.5"},
                {"land_class": "construction", "area_mu": "100"},
            ]
        )
    )
    assert case.basic_farmland_mu() == Decimal("4.5")
    assert case.cultivated_mu() == Decimal("10.0")
    assert is_cultivated(LandClass.permanent_basic_farmland)
    assert not is_cultivated(LandClass.other_agricultural)


def test_at_least_one_parcel() -> None:
    assert error_of(CaseFiled, case_data(parcels=[])).field == "data.parcels"


def test_fine_at_most_two_decimals() -> None:
    assert error_of(PenaltyDecided, penalty_data(fine_yuan="1.005")).field == "data.fine_yuan"


def test_every_topic_event_type_has_a_model() -> None:
    for topic in ALL_TOPICS:
        for event_type in topic.event_types:
            assert event_type in PAYLOAD_TYPES
            assert PAYLOAD_TYPES[event_type].event_type == event_type
    on_topics = {t for topic in ALL_TOPICS for t in topic.event_types}
    # Off the topics are exactly the old versions, which live on only to be upcast.
    assert set(PAYLOAD_TYPES) - on_topics == set(UPCASTERS)


def facts_error(**facts: object) -> InvalidEvent:
    return error_of(CaseFiled, case_data(facts=facts))


def test_facts_need_a_site() -> None:
    assert facts_error(building_use="none").field == "data.facts.site"


@pytest.mark.parametrize(
    ("site", "field", "reason"),
    [
        ({"location": "x", "real_estate_unit": "1411810010"}, "real_estate_unit", "28 characters"),
        (
            {"location": "x", "real_estate_unit": "141181001002XX00123F00010001"},
            "real_estate_unit",
            "not a real-estate unit code",
        ),
        (
            {"location": "x", "parcel_code": "141181001002GB0012Z"},
            "parcel_code",
            "not a parcel code",
        ),
        ({"location": "  "}, "location", "at least 1 character"),
        (
            {"location": "x", "coordinates": {"longitude": "181", "latitude": "37"}},
            "coordinates.longitude",
            "less than or equal to 180",
        ),
    ],
)
def test_bad_site_refused_naming_the_field(
    site: dict[str, object], field: str, reason: str
) -> None:
    err = facts_error(site=site)
    assert err.field == f"data.facts.site.{field}"
    assert reason in err.reason


def test_unit_must_stand_on_the_given_parcel() -> None:
    other_parcel = "141181001002GB00999"
    err = facts_error(site={"location": "x", "real_estate_unit": UNIT, "parcel_code": other_parcel})
    assert err.field == "data.facts.site"
    assert "not on parcel_code" in err.reason
    fine = CaseFiled.model_validate(
        case_data(
            facts={"site": {"location": "x", "real_estate_unit": UNIT, "parcel_code": PARCEL}}
        )
    )
    assert fine.facts.site.real_estate_unit == UNIT


def test_unit_code_is_normalised_to_upper_case() -> None:
    case = CaseFiled.model_validate(
        case_data(facts={"site": {"location": "x", "real_estate_unit": UNIT.lower()}})
    )
    assert case.facts.site.real_estate_unit == UNIT


def test_unknown_building_use_refused() -> None:
    err = facts_error(site={"location": "x"}, building_use="palace")
    assert err.field == "data.facts.building_use"


def test_project_needs_its_works_fact() -> None:
    err = facts_error(site={"location": "x"}, project={"code": "P-1", "name": "厂房"})
    assert err.field == "data.facts.project.works_started"


@pytest.mark.parametrize(
    ("fine", "reason"),
    [
        ("1e999999", "plain decimal"),  # the attack: a megabyte of zeros once written out
        ("1e999999999999", "plain decimal"),  # overflowed Decimal arithmetic: was a 500
        ("1E3", "plain decimal"),
        ("Infinity", "plain decimal"),
        ("0x10", "plain decimal"),
        ("1" + "0" * 40, "at most 32 characters"),
        ("1000000000000.01", "less than or equal to 1000000000000"),
        (10**13, "less than or equal to 1000000000000"),
    ],
)
def test_a_fine_is_a_plain_bounded_decimal(fine: object, reason: str) -> None:
    err = error_of(PenaltyDecided, penalty_data(fine_yuan=fine))
    assert err.field == "data.fine_yuan"
    assert reason in err.reason


def test_the_largest_fine_is_taken() -> None:
    fine = PenaltyDecided.model_validate(penalty_data(fine_yuan=" 1000000000000.00 ")).fine_yuan
    assert fine == Decimal(MAX_MONEY_YUAN)


@pytest.mark.parametrize(
    ("area", "reason"),
    [
        ("1e999999999999", "plain decimal"),  # overflowed the conversion: was a 500
        ("6.67e3", "plain decimal"),
        (10**40, "at most 66666666.67 m²"),  # quantize overflowed: was a 500
        ("66666667", "at most 66666666.67 m²"),
    ],
)
def test_square_metres_are_bounded_before_they_are_converted(area: object, reason: str) -> None:
    err = error_of(Parcel, {"land_class": "cultivated", "area_m2": area})
    assert "area_m2" in err.reason and reason in err.reason


def test_area_totals_are_bounded_by_the_most_parcels_a_case_holds() -> None:
    data = {
        "case_id": "C1",
        "township": "duizhen",
        "basic_farmland_mu": "0",
        "cultivated_mu": str(MAX_AREA_TOTAL_MU + 1),
        "rule": "r",
    }
    assert error_of(AccountabilityTriggered, data).field == "data.cultivated_mu"


def test_every_text_field_of_every_event_is_bounded() -> None:
    """A string with no maximum length would let one field outgrow MAX_EVENT_BYTES."""
    # Checked by their validators against a fixed length: the subject's 18-character ID
    # (GB 32100 / GB 11643) and the 19- and 28-character codes of GB/T 37346.
    fixed_length = {"id", "parcel_code", "real_estate_unit"}
    unbounded = set()
    for event_type, model in PAYLOAD_TYPES.items():
        schema = model.model_json_schema()
        for definition in [schema, *schema.get("$defs", {}).values()]:
            for name, field in definition.get("properties", {}).items():
                for option in field.get("anyOf", [field]):
                    if option.get("type") == "string" and not (
                        {"maxLength", "pattern", "enum", "const", "format"} & set(option)
                    ):
                        unbounded.add((event_type, name))
    assert {name for _, name in unbounded} == fixed_length
