"""The registry over HTTP on a real PostgreSQL: filing, steps, thresholds, idempotency, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from events.codec import decode
from events.envelope import MAX_EVENT_BYTES
from events.models import (
    AccountabilityTriggered,
    CaseClosed,
    CaseCorrected,
    CaseFiled,
    ConfiscationCompleted,
    LandProceduresObtained,
    Payload,
    PenaltyDecided,
    RectificationRecorded,
    RestorationVerified,
    Site,
)
from events.signing import TrustStore
from services.config import Settings
from services.entrypoints.case_routes import step_path
from services.registry.handlers import STEP_EVENTS
from tests.support import (
    bearer,
    business_premises_facts,
    case_body,
    filing_measures,
    in_process,
    new_parcel_code,
    new_unit_code,
)

FILED, CORRECTED = CaseFiled.event_type, CaseCorrected.event_type
ACCOUNTABILITY = AccountabilityTriggered.event_type


@pytest.fixture
async def api(settings: Settings, registry_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(registry_app, bearer(settings.home, "case-officer")) as client:
        yield client


@pytest.fixture
def inspector(settings: Settings) -> dict[str, str]:
    """Headers that sign as the agriculture bureau's inspector instead of the officer."""
    return bearer(settings.home, "agriculture-inspector")


async def _counts(db: asyncpg.Pool) -> tuple[int, int, int]:
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM cases) AS cases, (SELECT count(*) FROM outbox) AS outbox, "
        "(SELECT count(*) FROM clues) AS clues"
    )
    assert row is not None
    return row["cases"], row["outbox"], row["clues"]


async def _outbox_types(db: asyncpg.Pool, case_id: str) -> list[str]:
    rows = await db.fetch("SELECT event_type FROM outbox WHERE key = $1 ORDER BY position", case_id)
    return [row["event_type"] for row in rows]


async def test_filing_a_case_answers_201_and_writes_case_and_event(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    response = await api.post("/v1/cases", json=case_body(("cultivated", "2")))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "filed"
    assert body["accountability_started"] is False
    assert await _outbox_types(db, body["case_id"]) == [FILED]

    shown = (await api.get(f"/v1/cases/{body['case_id']}")).json()
    assert shown["parcels"] == [{"land_class": "cultivated", "area_mu": "2"}]
    assert [record["step"] for record in shown["records"]] == ["filing"]


async def test_square_metres_are_converted_exactly(api: httpx.AsyncClient) -> None:
    body = case_body()
    body["parcels"] = [{"land_class": "cultivated", "area_m2": "6670"}]
    created = (await api.post("/v1/cases", json=body)).json()
    shown = (await api.get(f"/v1/cases/{created['case_id']}")).json()
    assert shown["cultivated_mu"] == "10.005"
    assert created["accountability_started"] is True


@pytest.mark.parametrize(
    ("parcels", "started"),
    [
        ([("permanent_basic_farmland", "4.99")], False),
        ([("permanent_basic_farmland", "5")], True),
        ([("permanent_basic_farmland", "5.01")], True),
        ([("cultivated", "9.99")], False),
        ([("cultivated", "10")], True),
        ([("permanent_basic_farmland", "3"), ("cultivated", "7")], True),
    ],
)
async def test_accountability_starts_at_the_thresholds(
    api: httpx.AsyncClient, db: asyncpg.Pool, parcels: list[tuple[str, str]], started: bool
) -> None:
    response = await api.post("/v1/cases", json=case_body(*parcels))
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]
    assert response.json()["accountability_started"] is started
    expected = [FILED]
    if started:
        expected.append(ACCOUNTABILITY)
    assert await _outbox_types(db, case_id) == expected


async def test_a_correction_that_crosses_the_bound_starts_accountability_once(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    case_id = (await api.post("/v1/cases", json=case_body(("cultivated", "9")))).json()["case_id"]
    correction = {"parcels": [{"land_class": "cultivated", "area_mu": "12"}], "reason": "resurvey"}
    first = await api.post(f"/v1/cases/{case_id}/correction", json=correction)
    assert first.status_code == 200, first.text
    assert first.json()["accountability_started"] is True
    again = {"parcels": [{"land_class": "cultivated", "area_mu": "13"}], "reason": "resurvey 2"}
    assert (await api.post(f"/v1/cases/{case_id}/correction", json=again)).status_code == 200
    assert await _outbox_types(db, case_id) == [FILED, CORRECTED, ACCOUNTABILITY, CORRECTED]


async def test_the_lifecycle_to_closure(
    api: httpx.AsyncClient, db: asyncpg.Pool, inspector: dict[str, str]
) -> None:
    case_id = (await api.post("/v1/cases", json=case_body())).json()["case_id"]
    steps: list[tuple[str, dict[str, Any], str]] = [
        (
            "penalty",
            {
                "decision_no": "孝自然资罚〔2026〕7号",
                "decided_on": "2026-10-20",
                "fine_yuan": "120000.00",
                "summary": "拆除并罚款",
            },
            "penalty_decided",
        ),
        ("rectification", {"action": "demolition", "completed_on": "2026-11-01"}, "rectified"),
        ("restoration/sign-offs", {"verified_on": "2026-11-10"}, "rectified"),
        ("restoration/sign-offs", {"verified_on": "2026-11-10"}, "restored"),
        ("closure", {"closed_on": "2026-11-11", "reason": "复耕验收合格"}, "closed"),
    ]
    signers = iter([{}, inspector])  # the officer's sign-off, then the inspector's
    for step, body, status in steps:
        headers = next(signers) if step.startswith("restoration") else {}
        response = await api.post(f"/v1/cases/{case_id}/{step}", json=body, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    assert await _outbox_types(db, case_id) == [
        FILED,
        PenaltyDecided.event_type,
        RectificationRecorded.event_type,
        RestorationVerified.event_type,
        CaseClosed.event_type,
    ]


async def test_restoration_before_rectification_is_409_naming_both_states(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    case_id = (await api.post("/v1/cases", json=case_body())).json()["case_id"]
    before = await _counts(db)
    response = await api.post(
        f"/v1/cases/{case_id}/restoration/sign-offs", json={"verified_on": "2026-11-10"}
    )
    assert response.status_code == 409
    assert response.json()["error"] == (
        "cannot record restoration on a case that is filed; "
        "restoration needs the case to be rectified"
    )
    assert await _counts(db) == before


async def _filed(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """The answer to filing `body`, once it is a 201."""
    response = await api.post("/v1/cases", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _rectified(api: httpx.AsyncClient) -> tuple[str, str]:
    """A case rectified on 2026-11-01, and where its restoration sign-offs are posted."""
    case_id: str = (await api.post("/v1/cases", json=case_body())).json()["case_id"]
    penalty = {"decision_no": "罚9", "decided_on": "2026-10-20", "fine_yuan": "1", "summary": "罚"}
    assert (await api.post(f"/v1/cases/{case_id}/penalty", json=penalty)).status_code == 200
    rectification = {"action": "demolition", "completed_on": "2026-11-01"}
    done = await api.post(f"/v1/cases/{case_id}/rectification", json=rectification)
    assert done.status_code == 200, done.text
    return case_id, f"/v1/cases/{case_id}/restoration/sign-offs"


async def _days_apart(
    api: httpx.AsyncClient, inspector: dict[str, str]
) -> tuple[str, str, httpx.Response]:
    """A rectified case natural resources signed off for 2026-11-10, then agriculture for
    2026-11-12: its id, its sign-off path and what agriculture was answered."""
    case_id, path = await _rectified(api)
    assert (await api.post(path, json={"verified_on": "2026-11-10"})).is_success
    other_day = await api.post(path, json={"verified_on": "2026-11-12"}, headers=inspector)
    return case_id, path, other_day


async def _restoration_events(
    db: asyncpg.Pool, trust: TrustStore, case_id: str
) -> list[RestorationVerified]:
    """The signed restoration_verified events waiting in the outbox for this case."""
    rows = await db.fetch(
        "SELECT value FROM outbox WHERE key = $1 AND event_type = $2 ORDER BY position",
        case_id,
        RestorationVerified.event_type,
    )
    found = [decode(row["value"], trust)[1] for row in rows]
    return [event for event in found if isinstance(event, RestorationVerified)]


async def test_restoration_needs_both_bodies_sign_offs(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore, inspector: dict[str, str]
) -> None:
    case_id, path = await _rectified(api)
    first = await api.post(path, json={"verified_on": "2026-11-10"})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "rectified"
    assert first.json()["event_ids"] == []
    assert first.json()["awaiting"] == ["agriculture"]
    assert await _restoration_events(db, trust, case_id) == []
    shown = (await api.get(f"/v1/cases/{case_id}", headers=inspector)).json()
    assert shown["status"] == "rectified"
    assert shown["restoration_sign_offs"] == [
        {"body": "natural_resources", "officer": "case-officer", "verified_on": "2026-11-10"}
    ]
    audited = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE case_id = $1 AND action = 'restoration sign-off'",
        case_id,
    )
    assert audited == 1

    second = await api.post(path, json={"verified_on": "2026-11-10"}, headers=inspector)
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "restored"
    assert second.json()["awaiting"] == []
    assert len(second.json()["event_ids"]) == 1
    assert await _restoration_events(db, trust, case_id) == [
        RestorationVerified(
            case_id=case_id,
            verified_on=date(2026, 11, 10),
            natural_resources_officer="case-officer",
            agriculture_officer="agriculture-inspector",
        )
    ]


async def test_the_same_body_signing_twice_is_409(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore, inspector: dict[str, str]
) -> None:
    case_id, path = await _rectified(api)
    assert (await api.post(path, json={"verified_on": "2026-11-10"}, headers=inspector)).is_success
    again = await api.post(path, json={"verified_on": "2026-11-10"}, headers=inspector)
    assert again.status_code == 409
    assert "agriculture already signed off the restoration" in again.json()["error"]
    assert (await api.get(f"/v1/cases/{case_id}")).json()["status"] == "rectified"
    assert await _restoration_events(db, trust, case_id) == []


async def test_sign_offs_must_agree_on_the_day(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore, inspector: dict[str, str]
) -> None:
    case_id, path, other_day = await _days_apart(api, inspector)
    assert other_day.status_code == 422
    assert other_day.json()["errors"][0]["field"] == "verified_on"
    assert await _restoration_events(db, trust, case_id) == []
    # the old body naming both officers is refused: the officers come from the tokens
    named = {"verified_on": "2026-11-10", "agriculture_officer": "王芳"}
    refused = await api.post(path, json=named, headers=inspector)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "agriculture_officer"


async def test_a_retried_sign_off_with_its_key_signs_once(
    api: httpx.AsyncClient, db: asyncpg.Pool, inspector: dict[str, str]
) -> None:
    case_id, path = await _rectified(api)
    key = {"Idempotency-Key": f"sign-{case_id}"}
    first = await api.post(path, json={"verified_on": "2026-11-10"}, headers=key)
    retried = await api.post(path, json={"verified_on": "2026-11-10"}, headers=key)
    assert first.status_code == retried.status_code == 200
    assert first.json() == retried.json()
    # the same key from the other body is another request, not a replay of the first
    stolen = await api.post(path, json={"verified_on": "2026-11-10"}, headers={**key, **inspector})
    assert stolen.status_code == 422
    assert stolen.json()["errors"][0]["field"] == "Idempotency-Key"
    count = await db.fetchval(
        "SELECT count(*) FROM restoration_sign_offs WHERE case_id = $1", case_id
    )
    assert count == 1


async def test_one_idempotency_key_makes_one_case(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    body = case_body(("permanent_basic_farmland", "6"))
    headers = {"Idempotency-Key": f"file-{body['subject']['id']}"}
    before = await _counts(db)
    first = await api.post("/v1/cases", json=body, headers=headers)
    second = await api.post("/v1/cases", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    cases, outbox, clues = await _counts(db)
    assert (cases, outbox, clues) == (before[0] + 1, before[1] + 2, before[2])

    other = await api.post("/v1/cases", json=case_body(), headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


def _bad(path: list[str | int], value: Any) -> dict[str, Any]:
    body = case_body()
    target: Any = body
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


_DELETE = object()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (_bad(["subject", "id"], "91141181MA0K12345X"), "subject.id", "check character"),
        (_bad(["subject", "name"], "  "), "subject.name", "at least 1 character"),
        (_bad(["township"], "atlantis"), "township", "unknown township 'atlantis'"),
        (_bad(["township"], "daxiaobao_xiang"), "township", "was abolished: old cases keep it"),
        (_bad(["parcels", 0, "land_class"], "swamp"), "parcels.0.land_class", "Input should be"),
        (_bad(["parcels", 0, "area_mu"], "0"), "parcels.0.area_mu", "greater than 0"),
        (_bad(["parcels", 0, "area_mu"], "-3"), "parcels.0.area_mu", "greater than 0"),
        (_bad(["parcels", 0, "area_mu"], "1000000"), "parcels.0.area_mu", "less than or equal"),
        (_bad(["parcels", 0, "area_mu"], 2.5), "parcels.0.area_mu", "not a float"),
        (_bad(["found_on"], "2999-01-01"), "found_on", "is in the future"),
        (_bad(["parcels"], []), "parcels", "at least 1 item"),
        (_bad(["source"], _DELETE), "source", "Field required"),
        (_bad(["clue_id"], "CL-NOPE"), "clue_id", "no unused clue"),
        (
            _bad(["facts", "site", "real_estate_unit"], "141181001002JC0001F0000000"),
            "facts.site.real_estate_unit",
            "has 28 characters",
        ),
        (
            _bad(["facts", "site", "real_estate_unit"], "141181001002QQ00001F00000001"),
            "facts.site.real_estate_unit",
            "is not a real-estate unit code",
        ),
        (
            _bad(
                ["facts", "site"],
                {
                    "location": "东关村",
                    "parcel_code": "141181001002JC00002",
                    "real_estate_unit": "141181001002JC00001F00000001",
                },
            ),
            "facts.site",
            "is not on parcel_code 141181001002JC00002",
        ),
        (_bad(["facts", "site"], _DELETE), "facts.site", "Field required"),
        (_bad(["facts", "site", "location"], " "), "facts.site.location", "at least 1 character"),
        (_bad(["facts", "building_use"], "palace"), "facts.building_use", "Input should be"),
        (
            _bad(["facts", "project", "works_started"], "maybe"),
            "facts.project.works_started",
            "valid boolean",
        ),
        (_bad(["facts"], _DELETE), "facts", "Field required"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    api: httpx.AsyncClient, db: asyncpg.Pool, body: dict[str, Any], field: str, reason: str
) -> None:
    before = await _counts(db)
    response = await api.post("/v1/cases", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors[0]["field"] == field
    assert reason in errors[0]["reason"]
    assert await _counts(db) == before


async def test_malformed_json_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/cases", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["reason"].startswith("JSON decode error")


async def test_a_clue_becomes_a_case_once(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    clue = {
        "source": "drone",
        "township": "xiabao",
        "location": "下堡村东",
        "description": "耕地上新建厂房",
        "reported_on": "2026-10-01",
    }
    created = await api.post("/v1/clues", json=clue)
    assert created.status_code == 201, created.text
    clue_id = created.json()["clue_id"]
    first = await api.post("/v1/cases", json=case_body(clue_id=clue_id))
    assert first.status_code == 201
    second = await api.post("/v1/cases", json=case_body(clue_id=clue_id))
    assert second.status_code == 422
    assert second.json()["errors"][0]["field"] == "clue_id"


async def test_listing_pages_through_a_township(api: httpx.AsyncClient) -> None:
    filed = [
        (await api.post("/v1/cases", json=case_body(township="kaifaqu"))).json()["case_id"]
        for _ in range(3)
    ]
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"township": "kaifaqu", "status": "filed", "limit": 2}
        if after:
            params["after"] = after
        page = (await api.get("/v1/cases", params=params)).json()
        seen.extend(case["case_id"] for case in page["cases"])
        after = page["next_after"]
        if after is None:
            break
    assert set(filed) <= set(seen)
    assert seen == sorted(seen)
    assert (await api.get("/v1/cases", params={"township": "atlantis"})).status_code == 422
    assert (await api.get("/v1/cases/RL-0000-000000")).status_code == 404


async def test_health_reports_database_and_broker(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


async def test_openapi_document_lists_every_endpoint(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    # The steps' published names are pinned by tests/unit/test_step_routes.py.
    for step in STEP_EVENTS:
        assert step_path(step) in paths
    assert "/v1/cases/{case_id}/restoration/sign-offs" in paths
    assert "/v1/cases/{case_id}/restoration" not in paths
    assert {"/v1/cases", "/v1/clues", "/v1/cases/{case_id}", "/healthz"} <= set(paths)


# --- the facts of the case decide its measures ---------------------------------------


async def _events(db: asyncpg.Pool, trust: TrustStore, case_id: str) -> list[Payload]:
    """Every signed event waiting in the outbox for this case, decoded, in order."""
    rows = await db.fetch("SELECT value FROM outbox WHERE key = $1 ORDER BY position", case_id)
    return [decode(row["value"], trust)[1] for row in rows]


def _measures(decisions: list[dict[str, Any]]) -> set[str]:
    return {decision["measure"] for decision in decisions}


SUPPLY = {"refuse_water_supply", "refuse_power_supply", "refuse_gas_supply", "refuse_loans"}
PENALTY = {
    "decision_no": "孝自然资罚〔2026〕9号",
    "decided_on": "2026-10-20",
    "fine_yuan": "30000.00",
    "summary": "责令退还并罚款",
}


async def test_filing_records_the_facts_and_answers_what_started_and_why(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore
) -> None:
    body = case_body(("cultivated", "1.5"))
    answer = await _filed(api, body)
    by_code = {decision["measure"]: decision for decision in answer["starts"]}
    assert SUPPLY | {"halt_works", "refuse_licence"} <= set(by_code)
    assert "refuse_afforestation_subsidy" not in by_code  # no afforestation on the land
    power = by_code["refuse_power_supply"]
    assert power["target"] == "site"
    assert power["land"] == ["cultivated"]
    assert power["facts"] == ["construction_project", "business_premises"]
    assert "cultivated" in power["rule"]
    assert by_code["halt_works"]["target"] == "project"

    case_id = answer["case_id"]
    [filed] = await _events(db, trust, case_id)
    assert isinstance(filed, CaseFiled)
    assert [d.model_dump(mode="json") for d in filed.starts] == answer["starts"]
    shown = (await api.get(f"/v1/cases/{case_id}")).json()
    assert Site.model_validate(shown["facts"]["site"]) == Site.model_validate(body["facts"]["site"])
    assert shown["facts"]["building_use"] == "business_premises"
    measures = {m["measure"]: m for m in shown["measures"]}
    assert set(measures) == set(by_code)
    assert all(m["in_force"] and m["started_by"] == "filing" for m in measures.values())
    assert measures["refuse_power_supply"]["departments"] == ["power_supply"]
    assert "供电" in measures["refuse_power_supply"]["legal_basis"]
    assert len(measures["refuse_funding"]["departments"]) > 3


async def test_a_case_on_unused_land_starts_nothing(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore
) -> None:
    answer = await _filed(api, case_body(("unused", "0.5")))
    assert answer["starts"] == []
    [filed] = await _events(db, trust, answer["case_id"])
    assert isinstance(filed, CaseFiled)
    assert filed.starts == []


async def test_a_residence_on_cultivated_land_starts_only_the_subject_measures(
    api: httpx.AsyncClient,
) -> None:
    facts = {"site": {"location": "东关村北侧民房"}, "building_use": "residence"}
    starts = (await _filed(api, case_body(("cultivated", "0.4"), facts=facts)))["starts"]
    assert _measures(starts) == {"refuse_funding", "refuse_fiscal_funding"}
    assert {decision["target"] for decision in starts} == {"subject"}


async def test_accountability_and_penalty_start_their_own_measures(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore
) -> None:
    body = case_body(("permanent_basic_farmland", "6"))
    answer = await _filed(api, body)
    # The threshold starts no measure: its referrals are workflows now (issue #17).
    assert answer["accountability_started"] is True
    assert _measures(answer["starts"]) == filing_measures(body)
    case_id = answer["case_id"]
    decided = await api.post(f"/v1/cases/{case_id}/penalty", json=PENALTY)
    assert decided.status_code == 200, decided.text
    assert _measures(decided.json()["starts"]) == {"publish_credit_record"}
    filed, triggered, penalty = await _events(db, trust, case_id)
    assert isinstance(filed, CaseFiled)
    assert isinstance(triggered, AccountabilityTriggered)
    assert isinstance(penalty, PenaltyDecided)
    assert triggered.starts == []
    assert [d.measure for d in penalty.starts] == ["publish_credit_record"]


async def test_a_correction_of_the_facts_ends_and_starts_measures(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore
) -> None:
    case_id = (await api.post("/v1/cases", json=case_body())).json()["case_id"]
    # the building turns out to be a home: no premises, no project
    residence = {"site": {"location": "孝义市兑镇镇东村北侧"}, "building_use": "residence"}
    correction = {
        "parcels": [{"land_class": "cultivated", "area_mu": "1.5"}],
        "facts": residence,
        "reason": "现场复核：自住房，无施工项目",
    }
    response = await api.post(f"/v1/cases/{case_id}/correction", json=correction)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["starts"] == []
    assert SUPPLY | {"halt_works", "refuse_licence"} <= set(answer["ends"])
    assert "refuse_funding" not in answer["ends"]
    shown = (await api.get(f"/v1/cases/{case_id}")).json()
    assert shown["facts"]["building_use"] == "residence"
    in_force = {m["measure"] for m in shown["measures"] if m["in_force"]}
    assert in_force == {"refuse_funding", "refuse_fiscal_funding"}
    ended = {m["measure"]: m for m in shown["measures"] if not m["in_force"]}
    assert ended["refuse_power_supply"]["ended_by"] == "corrected"

    # back to business premises, at another unit: the site measures start there
    premises = business_premises_facts(project=None)
    again = await api.post(
        f"/v1/cases/{case_id}/correction",
        json={**correction, "facts": premises, "reason": "复核：改作经营"},
    )
    assert again.status_code == 200, again.text
    assert {"refuse_power_supply", "refuse_licence"} <= _measures(again.json()["starts"])
    assert "halt_works" not in _measures(again.json()["starts"])  # still no project
    assert again.json()["ends"] == []
    # a correction without facts leaves them standing
    resurvey = {"parcels": [{"land_class": "cultivated", "area_mu": "2"}], "reason": "重测"}
    same = await api.post(f"/v1/cases/{case_id}/correction", json=resurvey)
    assert same.status_code == 200, same.text
    assert (same.json()["starts"], same.json()["ends"]) == ([], [])
    events = await _events(db, trust, case_id)
    corrections = [e for e in events if isinstance(e, CaseCorrected)]
    assert len(corrections) == 3
    assert corrections[0].facts is not None and corrections[2].facts is None
    assert "refuse_power_supply" in corrections[0].ends
    assert "refuse_power_supply" in {d.measure for d in corrections[1].starts}


async def test_a_corrected_site_moves_the_site_measures(api: httpx.AsyncClient) -> None:
    body = case_body()
    case_id = (await api.post("/v1/cases", json=body)).json()["case_id"]
    moved = {
        **body["facts"],
        "site": {"location": "东关村南侧", "real_estate_unit": new_unit_code()},
    }
    correction = {"parcels": body["parcels"], "facts": moved, "reason": "单元号更正"}
    response = await api.post(f"/v1/cases/{case_id}/correction", json=correction)
    assert response.status_code == 200, response.text
    answer = response.json()
    site_measures = {d["measure"] for d in answer["starts"] if d["target"] == "site"}
    assert "refuse_power_supply" in site_measures
    assert site_measures <= set(answer["ends"])
    assert not {d["measure"] for d in answer["starts"] if d["target"] != "site"}


async def test_land_procedures_legalise_the_case_and_lift_the_halt(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore
) -> None:
    # trees planted on the farmland besides: only their restoration ends that measure
    facts = business_premises_facts(illegal_afforestation=True)
    body = case_body(facts=facts)
    case_id = (await api.post("/v1/cases", json=body)).json()["case_id"]
    procedures = {
        "approval_no": "晋政地〔2026〕88号",
        "approved_on": "2026-10-25",
        "approved_by": "山西省人民政府",
    }
    response = await api.post(f"/v1/cases/{case_id}/land-procedures", json=procedures)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "legalised"
    events = await _events(db, trust, case_id)
    assert [type(e) for e in events] == [CaseFiled, LandProceduresObtained]
    assert events[-1] == LandProceduresObtained(case_id=case_id, **procedures)

    shown = (await api.get(f"/v1/cases/{case_id}")).json()
    assert shown["status"] == "legalised"
    ended = {m["measure"]: m for m in shown["measures"] if not m["in_force"]}
    assert ended["halt_works"]["ended_by"] == "land_procedures_obtained"
    assert ended["halt_works"]["ended_event"] == response.json()["event_ids"][0]
    assert "refuse_power_supply" in ended
    # forestry's refusal of the afforestation subsidy is not ended by procedures obtained
    in_force = {m["measure"] for m in shown["measures"] if m["in_force"]}
    assert in_force == {"refuse_afforestation_subsidy"}

    # a legalised case is no longer open: no correction, but it may be closed
    refused = await api.post(
        f"/v1/cases/{case_id}/correction",
        json={"parcels": [{"land_class": "cultivated", "area_mu": "1"}], "reason": "x"},
    )
    assert refused.status_code == 409
    assert "case that is legalised" in refused.json()["error"]
    closure = {"closed_on": "2026-10-30", "reason": "已补办用地手续"}
    closed = await api.post(f"/v1/cases/{case_id}/closure", json=closure)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"


async def test_confiscation_ends_the_case_and_reaches_finance(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore
) -> None:
    case_id = (await api.post("/v1/cases", json=case_body())).json()["case_id"]
    confiscation = {
        "decision_no": "孝自然资罚〔2026〕9号",
        "completed_on": "2026-10-28",
        "property": "厂房及附属设施",
    }
    early = await api.post(f"/v1/cases/{case_id}/confiscation", json=confiscation)
    assert early.status_code == 409
    assert early.json()["error"] == (
        "cannot record confiscation on a case that is filed; "
        "confiscation needs the case to be penalty_decided or rectified"
    )
    assert (await api.post(f"/v1/cases/{case_id}/penalty", json=PENALTY)).status_code == 200
    response = await api.post(f"/v1/cases/{case_id}/confiscation", json=confiscation)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "confiscated"
    assert _measures(response.json()["starts"]) == {"supervise_confiscated_property"}
    completed = (await _events(db, trust, case_id))[-1]
    assert isinstance(completed, ConfiscationCompleted)
    [supervise] = completed.starts
    assert (supervise.measure, supervise.target) == ("supervise_confiscated_property", "site")

    shown = (await api.get(f"/v1/cases/{case_id}")).json()
    in_force = {m["measure"] for m in shown["measures"] if m["in_force"]}
    # what confiscation does not end: the credit record stands
    assert in_force == {"supervise_confiscated_property", "publish_credit_record"}
    assert {m["ended_by"] for m in shown["measures"] if not m["in_force"]} == {
        "confiscation_completed"
    }
    # the case has ended: nothing more is recorded on it
    closure = {"closed_on": "2026-10-30", "reason": "没收到位"}
    after = await api.post(f"/v1/cases/{case_id}/closure", json=closure)
    assert after.status_code == 409
    assert "case that is confiscated" in after.json()["error"]


async def test_new_steps_refuse_future_dates_naming_the_field(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    case_id = (await api.post("/v1/cases", json=case_body())).json()["case_id"]
    before = await _counts(db)
    procedures = {"approval_no": "晋政地1号", "approved_on": "2999-01-01", "approved_by": "省政府"}
    response = await api.post(f"/v1/cases/{case_id}/land-procedures", json=procedures)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "approved_on"
    assert "in the future" in response.json()["errors"][0]["reason"]
    missing = await api.post(f"/v1/cases/{case_id}/confiscation", json={"decision_no": "1"})
    assert missing.status_code == 422
    assert {e["field"] for e in missing.json()["errors"]} == {"completed_on", "property"}
    assert await _counts(db) == before


async def test_a_unit_on_its_parcel_is_taken(api: httpx.AsyncClient) -> None:
    parcel = new_parcel_code()
    site = {"location": "东关村", "parcel_code": parcel, "real_estate_unit": new_unit_code(parcel)}
    facts = business_premises_facts(site=site)
    response = await api.post("/v1/cases", json=case_body(facts=facts))
    assert response.status_code == 201, response.text
    shown = (await api.get(f"/v1/cases/{response.json()['case_id']}")).json()
    assert {k: v for k, v in shown["facts"]["site"].items() if v is not None} == site


# --- restoration sign-offs: voided by new works, after the works, a body's own date -----


async def _sign_offs(api: httpx.AsyncClient, case_id: str) -> list[dict[str, str]]:
    shown: list[dict[str, str]] = (await api.get(f"/v1/cases/{case_id}")).json()[
        "restoration_sign_offs"
    ]
    return shown


async def test_a_new_rectification_voids_a_pending_sign_off(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore, inspector: dict[str, str]
) -> None:
    case_id, path = await _rectified(api)
    assert (await api.post(path, json={"verified_on": "2026-11-10"})).is_success
    again = {"action": "restoration_works", "completed_on": "2026-11-05"}
    assert (await api.post(f"/v1/cases/{case_id}/rectification", json=again)).is_success
    assert await _sign_offs(api, case_id) == []
    voided = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE case_id = $1 "
        "AND action = 'restoration sign-off voided'",
        case_id,
    )
    assert voided == 1  # the audit log keeps the withdrawn sign-off
    # the inspector's sign-off is now the first of a new inspection, not the second
    first = await api.post(path, json={"verified_on": "2026-11-10"}, headers=inspector)
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["awaiting"]) == (
        "rectified",
        ["natural_resources"],
    )
    assert await _restoration_events(db, trust, case_id) == []


async def test_a_sign_off_before_the_rectification_was_completed_is_422(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    case_id, path = await _rectified(api)  # completed on 2026-11-01
    early = await api.post(path, json={"verified_on": "2026-10-31"})
    assert early.status_code == 422, early.text
    assert early.json()["errors"][0]["field"] == "verified_on"
    assert "precedes the rectification completed on 2026-11-01" in early.json()["error"]
    assert await _sign_offs(api, case_id) == []


async def test_a_body_corrects_its_date_and_the_other_body_then_signs(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore, inspector: dict[str, str]
) -> None:
    case_id, path, other_day = await _days_apart(api, inspector)
    assert other_day.status_code == 422  # not the day natural resources signed for

    corrected = await api.post(path, json={"verified_on": "2026-11-12"})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["awaiting"] == ["agriculture"]
    assert await _sign_offs(api, case_id) == [
        {"body": "natural_resources", "officer": "case-officer", "verified_on": "2026-11-12"}
    ]
    reasons = await db.fetch(
        "SELECT reason FROM audit_log WHERE case_id = $1 AND action = 'restoration sign-off' "
        "ORDER BY seq",
        case_id,
    )
    assert "replaces the sign-off by case-officer, verified on 2026-11-10" in reasons[-1]["reason"]
    same_again = await api.post(path, json={"verified_on": "2026-11-12"})
    assert same_again.status_code == 409  # the same body, the same day: signed twice

    second = await api.post(path, json={"verified_on": "2026-11-12"}, headers=inspector)
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "restored"
    (verified,) = await _restoration_events(db, trust, case_id)
    assert verified.verified_on == date(2026, 11, 12)


# --- bounded input: no value is answered 200 and then dropped downstream ---------------


@pytest.mark.parametrize("fine", ["1e999999", "1e999999999999", "1000000000000.01"])
async def test_an_absurd_fine_is_422_naming_fine_yuan(
    api: httpx.AsyncClient, db: asyncpg.Pool, fine: str
) -> None:
    case_id = (await api.post("/v1/cases", json=case_body())).json()["case_id"]
    before = await _counts(db)
    response = await api.post(f"/v1/cases/{case_id}/penalty", json={**PENALTY, "fine_yuan": fine})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "fine_yuan"
    assert await _counts(db) == before
    assert (await api.get(f"/v1/cases/{case_id}")).json()["status"] == "filed"


@pytest.mark.parametrize("area", ["1e999999999999", 10**40])
async def test_an_absurd_area_in_square_metres_is_422_not_500(
    api: httpx.AsyncClient, area: object
) -> None:
    body = case_body()
    body["parcels"] = [{"land_class": "cultivated", "area_m2": area}]
    response = await api.post("/v1/cases", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "parcels.0"
    assert "area_m2" in response.json()["errors"][0]["reason"]


async def test_a_body_over_a_mebibyte_is_413_naming_the_limit(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    before = await _counts(db)
    body = case_body()
    body["padding"] = "x" * (1024 * 1024)
    declared = await api.post("/v1/cases", json=body)
    assert declared.status_code == 413, declared.text
    assert "exceeds the limit of 1048576 bytes (1 MiB)" in declared.json()["error"]
    assert declared.json()["errors"][0]["field"] == "body"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(17):
            yield b" " * 65536

    streamed = await api.post(
        "/v1/cases", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413, streamed.text
    assert await _counts(db) == before
    # just under the limit is read and judged on its content as before
    small = await api.post("/v1/cases", json={**case_body(), "padding": "x" * 1000})
    assert small.status_code == 422
    assert small.json()["errors"][0]["field"] == "padding"


def _longest(length: int) -> str:
    """A text of `length` characters that each take 6 bytes in JSON (\\u0001)."""
    return "\x01" * length


async def test_the_largest_case_fits_in_an_event_or_is_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore
) -> None:
    """500 parcels and every text at its longest: filed, corrected and penalised, each
    event within MAX_EVENT_BYTES and taken by a consumer (decode); or refused with 422.
    Never answered 2xx and then dropped downstream."""
    parcels = [{"land_class": "permanent_basic_farmland", "area_mu": "99999.999999"}] * 500
    facts = business_premises_facts()
    facts["site"]["location"] = _longest(4000)
    facts["project"].update(name=_longest(200), code="P" * 64)
    body = case_body(
        subject={"kind": "organization", "id": case_body()["subject"]["id"], "name": _longest(200)},
        violation_kind=_longest(200),
        facts=facts,
    )
    body["parcels"] = parcels
    filed = await api.post("/v1/cases", json=body)
    assert filed.status_code in (201, 422), filed.text
    if filed.status_code == 422:
        assert filed.json()["errors"][0]["field"] == "body"
        return
    case_id = filed.json()["case_id"]
    correction = {"parcels": parcels, "facts": facts, "reason": _longest(4000)}
    corrected = await api.post(f"/v1/cases/{case_id}/correction", json=correction)
    assert corrected.status_code in (200, 422), corrected.text
    penalty = {**PENALTY, "decision_no": _longest(200), "summary": _longest(4000)}
    penalised = await api.post(f"/v1/cases/{case_id}/penalty", json=penalty)
    assert penalised.status_code in (200, 422), penalised.text
    rows = await db.fetch("SELECT value FROM outbox WHERE key = $1", case_id)
    assert len(rows) >= 2  # filing and accountability at least
    for row in rows:
        assert len(row["value"]) <= MAX_EVENT_BYTES
        decode(row["value"], trust)  # what every consumer does first: it is taken


async def test_an_event_over_the_size_limit_is_refused_before_anything_is_written(
    api: httpx.AsyncClient, db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry measures each signed event against what consumers take: with the
    limit lowered below an ordinary case, filing one is 422 and writes nothing."""
    monkeypatch.setattr("services.registry.handlers.MAX_EVENT_BYTES", 2000)
    before = await _counts(db)
    response = await api.post("/v1/cases", json=case_body())
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"
    assert "over the limit of 2000" in response.json()["errors"][0]["reason"]
    assert await _counts(db) == before
