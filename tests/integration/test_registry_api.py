"""The registry over HTTP on a real PostgreSQL: filing, steps, thresholds, idempotency, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from events.codec import decode
from events.models import RestorationVerified
from events.signing import TrustStore
from services.access import TokenStore, dev_token
from services.blocklist.queries import CentralChecks
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.entrypoints.api import create_app
from services.registry.handlers import Registry
from tests.support import case_body


@pytest.fixture
async def api(
    settings: Settings, registry: Registry, queries: DepartmentQueries, checks: CentralChecks
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, registry, queries, checks, TokenStore.load(settings.api_tokens))
    transport = httpx.ASGITransport(app=app)
    officer = {"Authorization": f"Bearer {dev_token(settings.home, 'case-officer')}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://registry", headers=officer
    ) as client:
        yield client


@pytest.fixture
def inspector(settings: Settings) -> dict[str, str]:
    """Headers that sign as the agriculture bureau's inspector instead of the officer."""
    return {"Authorization": f"Bearer {dev_token(settings.home, 'agriculture-inspector')}"}


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
    assert await _outbox_types(db, body["case_id"]) == ["redline.case.filed.v2"]

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
    expected = ["redline.case.filed.v2"]
    if started:
        expected.append("redline.accountability.triggered.v1")
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
    assert await _outbox_types(db, case_id) == [
        "redline.case.filed.v2",
        "redline.case.corrected.v1",
        "redline.accountability.triggered.v1",
        "redline.case.corrected.v1",
    ]


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
        "redline.case.filed.v2",
        "redline.case.penalty_decided.v1",
        "redline.case.rectification_recorded.v1",
        "redline.case.restoration_verified.v1",
        "redline.case.closed.v1",
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


async def _rectified(api: httpx.AsyncClient) -> str:
    case_id: str = (await api.post("/v1/cases", json=case_body())).json()["case_id"]
    penalty = {"decision_no": "罚9", "decided_on": "2026-10-20", "fine_yuan": "1", "summary": "罚"}
    assert (await api.post(f"/v1/cases/{case_id}/penalty", json=penalty)).status_code == 200
    rectification = {"action": "demolition", "completed_on": "2026-11-01"}
    done = await api.post(f"/v1/cases/{case_id}/rectification", json=rectification)
    assert done.status_code == 200, done.text
    return case_id


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
    case_id = await _rectified(api)
    path = f"/v1/cases/{case_id}/restoration/sign-offs"
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
    case_id = await _rectified(api)
    path = f"/v1/cases/{case_id}/restoration/sign-offs"
    assert (await api.post(path, json={"verified_on": "2026-11-10"}, headers=inspector)).is_success
    again = await api.post(path, json={"verified_on": "2026-11-10"}, headers=inspector)
    assert again.status_code == 409
    assert "agriculture already signed off the restoration" in again.json()["error"]
    assert (await api.get(f"/v1/cases/{case_id}")).json()["status"] == "rectified"
    assert await _restoration_events(db, trust, case_id) == []


async def test_sign_offs_must_agree_on_the_day(
    api: httpx.AsyncClient, db: asyncpg.Pool, trust: TrustStore, inspector: dict[str, str]
) -> None:
    case_id = await _rectified(api)
    path = f"/v1/cases/{case_id}/restoration/sign-offs"
    assert (await api.post(path, json={"verified_on": "2026-11-10"})).is_success
    other_day = await api.post(path, json={"verified_on": "2026-11-12"}, headers=inspector)
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
    case_id = await _rectified(api)
    path = f"/v1/cases/{case_id}/restoration/sign-offs"
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
        (_bad(["parcels", 0, "land_class"], "swamp"), "parcels.0.land_class", "Input should be"),
        (_bad(["parcels", 0, "area_mu"], "0"), "parcels.0.area_mu", "greater than 0"),
        (_bad(["parcels", 0, "area_mu"], "-3"), "parcels.0.area_mu", "greater than 0"),
        (_bad(["parcels", 0, "area_mu"], "1000000"), "parcels.0.area_mu", "less than or equal"),
        (_bad(["parcels", 0, "area_mu"], 2.5), "parcels.0.area_mu", "not a float"),
        (_bad(["found_on"], "2999-01-01"), "found_on", "is in the future"),
        (_bad(["parcels"], []), "parcels", "at least 1 item"),
        (_bad(["source"], _DELETE), "source", "Field required"),
        (_bad(["clue_id"], "CL-NOPE"), "clue_id", "no unused clue"),
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
        (await api.post("/v1/cases", json=case_body(township="nanyang"))).json()["case_id"]
        for _ in range(3)
    ]
    seen: list[str] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"township": "nanyang", "status": "filed", "limit": 2}
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
    for step in ("penalty", "rectification", "revocation", "closure", "correction"):
        assert f"/v1/cases/{{case_id}}/{step}" in paths
    assert "/v1/cases/{case_id}/restoration/sign-offs" in paths
    assert "/v1/cases/{case_id}/restoration" not in paths
    assert {"/v1/cases", "/v1/clues", "/v1/cases/{case_id}", "/healthz"} <= set(paths)
