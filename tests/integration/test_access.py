"""The registry API refuses callers without a token, or whose role the table does not allow;
what it answers without a token (/healthz) costs no connection per request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from events.signing import TrustStore
from services.access import TokenStore
from services.adapters.migrate import migrate
from services.bootstrap import central_checks
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.entrypoints import health_routes
from services.entrypoints.api import create_app
from services.registry.handlers import Registry
from tests.support import bearer, case_body, in_process, new_uscc

As = Callable[[str | None], dict[str, str]]


@pytest.fixture
async def api(registry_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(registry_app) as client:
        yield client


@pytest.fixture
def as_(settings: Settings) -> As:
    def headers(name: str | None) -> dict[str, str]:
        return {} if name is None else bearer(settings.home, name)

    return headers


async def test_no_or_unknown_token_is_401_naming_the_header(
    api: httpx.AsyncClient, as_: As
) -> None:
    missing = await api.post("/v1/cases", json=case_body())
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["errors"][0]["field"] == "Authorization"
    forged = await api.post(
        "/v1/cases", json=case_body(), headers={"Authorization": "Bearer not-a-token"}
    )
    assert forged.status_code == 401
    assert (await api.get("/metrics")).status_code == 200  # Prometheus scrapes it openly


async def test_only_case_officers_file_and_change_cases(api: httpx.AsyncClient, as_: As) -> None:
    for role in ("subscriber", "operator", "department-power_supply"):
        refused = await api.post("/v1/cases", json=case_body(), headers=as_(role))
        assert refused.status_code == 403, role
    filed = await api.post("/v1/cases", json=case_body(), headers=as_("case-officer"))
    assert filed.status_code == 201
    case_id = filed.json()["case_id"]
    revocation = {"court": "法院", "decision_no": "(2026)1号", "revoked_on": "2026-11-20"}
    by_department = await api.post(
        f"/v1/cases/{case_id}/revocation", json=revocation, headers=as_("department-finance")
    )
    assert by_department.status_code == 403
    shown = await api.get(f"/v1/cases/{case_id}", headers=as_("operator"))
    assert shown.status_code == 200 and shown.json()["status"] == "filed"


async def test_a_department_reads_only_its_own_blocks(
    api: httpx.AsyncClient, as_: As, settings: Settings
) -> None:
    for code in ("power_supply", "banks"):  # their tables, whether or not they have run yet
        await migrate(
            settings.require()[1], package="services.departments.migrations", schema=f"dept_{code}"
        )
    power = as_("department-power_supply")
    own = await api.get("/v1/departments/power_supply/blocks", headers=power)
    other = await api.get("/v1/departments/banks/blocks", headers=power)
    operator = await api.get("/v1/departments/banks/blocks", headers=as_("operator"))
    assert own.status_code == 200 and operator.status_code == 200
    assert other.status_code == 403
    assert "may read only its own blocks" in other.json()["errors"][0]["reason"]
    # A department checks only its own measures (tests/integration/test_check_privileges.py
    # performs the whole attack, with a builder vouching for the lists).
    loans = {"measure": "refuse_loans", "subject": new_uscc()}
    check = await api.get("/v1/checks", params=loans, headers=power)
    assert check.status_code == 403
    assert check.json()["errors"] == [
        {
            "field": "measure",
            "reason": "measure refuse_loans: department power_supply may check only its own "
            "measures (refuse_power_supply)",
        }
    ]
    granted = await api.get("/v1/checks", params=loans, headers=as_("subscriber"))
    assert granted.status_code != 403  # the demo subscriber is granted the banks' measure


async def test_only_the_two_bodies_sign_off_a_restoration(api: httpx.AsyncClient, as_: As) -> None:
    filed = await api.post("/v1/cases", json=case_body(), headers=as_("case-officer"))
    path = f"/v1/cases/{filed.json()['case_id']}/restoration/sign-offs"
    for name in ("operator", "subscriber", "department-agriculture", "department-power_supply"):
        refused = await api.post(path, json={"verified_on": "2026-11-10"}, headers=as_(name))
        assert refused.status_code == 403, name
        assert "is for agriculture_inspector, case_officer" in refused.json()["error"]
    # the inspector reaches the rule (a filed case is not yet rectified), nothing more
    inspector = as_("agriculture-inspector")
    signed = await api.post(path, json={"verified_on": "2026-11-10"}, headers=inspector)
    assert signed.status_code == 409
    assert (await api.post("/v1/cases", json=case_body(), headers=inspector)).status_code == 403


async def _sessions(conn: asyncpg.Connection) -> int:
    """Sessions ever opened to this database (PostgreSQL counts each as it ends)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    count: int = await conn.fetchval(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    return count


async def test_health_opens_no_connection_per_request(
    own_database: Settings,
    trust: TrustStore,  # the dev tokens and subject key
    registry: Registry,
    queries: DepartmentQueries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It needs no token, so a flood of it must not become a flood of database sessions
    and broker clients: it is served from the checks' pool and one kept broker client."""
    created: list[int] = []

    class CountedAdmin(AIOKafkaAdminClient):  # type: ignore[misc]
        def __init__(self, **options: Any) -> None:
            created.append(1)
            super().__init__(**options)

    monkeypatch.setattr(health_routes, "AIOKafkaAdminClient", CountedAdmin)
    _, database = own_database.require()
    async with central_checks(own_database) as checks:
        app = create_app(
            own_database, registry, queries, checks, TokenStore.load(own_database.api_tokens)
        )
        watcher = await asyncpg.connect(database)
        try:
            async with in_process(app) as http:
                first = await http.get("/healthz")  # the pool and the broker client, once
                before = await _sessions(watcher)
                answers = await asyncio.gather(*(http.get("/healthz") for _ in range(60)))
                after = await _sessions(watcher)
        finally:
            await watcher.close()
            await app.state.health.close()
    assert first.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert {(a.status_code, a.json()["status"]) for a in answers} == {(200, "ok")}
    # A straggler of the set-up may end meanwhile; a session per request would be 60.
    assert after - before <= 2, f"{after - before} database sessions for 60 health checks"
    assert len(created) == 1, f"{len(created)} broker clients for 61 health checks"
