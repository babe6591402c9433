"""The registry API refuses callers without a token, or whose role the table does not allow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from services.access import TokenStore, dev_token
from services.adapters.migrate import migrate
from services.blocklist.queries import CentralChecks
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.entrypoints.api import create_app
from services.registry.handlers import Registry
from tests.support import case_body, new_uscc

As = Callable[[str | None], dict[str, str]]


@pytest.fixture
async def api(
    settings: Settings, registry: Registry, queries: DepartmentQueries, checks: CentralChecks
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, registry, queries, checks, TokenStore.load(settings.api_tokens))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        yield client


@pytest.fixture
def as_(settings: Settings) -> As:
    def headers(name: str | None) -> dict[str, str]:
        return {} if name is None else {"Authorization": f"Bearer {dev_token(settings.home, name)}"}

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
    check = await api.get(
        "/v1/checks",
        params={"measure": "refuse_loans", "subject": new_uscc()},
        headers=as_("subscriber"),
    )
    assert check.status_code == 200 and check.json()["status"] == "clear"


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
