from typing import Any

import pytest

from events.errors import UnknownEventType
from events.models import PAYLOAD_TYPES, CaseFiled, CaseFiledV1
from events.upcasting import CURRENT_TYPES, UPCASTERS, upcast

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
    event_type, data = upcast("redline.case.filed.v1", sent)
    assert sent == before, "the input must not be modified"
    assert event_type == "redline.case.filed.v2"
    expected = CaseFiled.model_validate(
        {
            **{k: v for k, v in V1.items() if k not in ("land_class", "area_mu")},
            "parcels": [{"land_class": "cultivated", "area_mu": "12.5"}],
        }
    )
    assert CaseFiled.model_validate(data) == expected


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
    assert "redline.case.filed.v2" in CURRENT_TYPES
    assert set(PAYLOAD_TYPES) - set(UPCASTERS) == CURRENT_TYPES
    for _old, (new, _step) in UPCASTERS.items():
        assert new in PAYLOAD_TYPES
