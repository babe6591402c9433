"""Referrals as workflows on the real stack (issue #17): the threshold refers by itself, each
receiver accepts or refuses under its own token and answers; overdue shows; a village
patrol's clue becomes a case; each role is allowed or refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import yaml
from fastapi import FastAPI

from services.access import TokenStore, dev_token, token_hash
from services.blocklist.queries import CentralChecks
from services.bootstrap import referrals_for, utc_now
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.entrypoints.api import create_app
from services.registry.handlers import Registry
from services.townships.directory import load_townships
from tests.support import case_body, in_process

THRESHOLD = ("permanent_basic_farmland", "6")  # 5 mu or more: accountability (seed §四(五))
OWN_TOWNSHIP = "duizhen"
PATROL_TOKEN, CHIEF_TOKEN = "patrol-token-duizhen", "field-chief-token-duizhen"


@dataclass
class Bus:
    client: httpx.AsyncClient
    app: FastAPI
    settings: Settings
    registry: Registry

    def as_(self, name: str) -> dict[str, str]:
        raw = {"village-patrol": PATROL_TOKEN, "field-chief": CHIEF_TOKEN}.get(name)
        return {"Authorization": f"Bearer {raw or dev_token(self.settings.home, name)}"}

    def at(self, clock: Callable[[], datetime]) -> None:
        """The referral service reads the time from `clock` (overdue without sleeping)."""
        self.app.state.referrals = referrals_for(self.registry, clock)

    def today(self) -> str:
        return datetime.now(ZoneInfo(self.settings.timezone)).date().isoformat()

    async def post(self, path: str, body: dict[str, Any], who: str, **headers: str) -> Any:
        return await self.client.post(path, json=body, headers={**self.as_(who), **headers})

    async def get(self, path: str, who: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.as_(who))

    async def file(self, *parcels: tuple[str, str], **extra: Any) -> dict[str, Any]:
        filed = await self.post("/v1/cases", case_body(*parcels, **extra), "case-officer")
        assert filed.status_code == 201, filed.text
        answer: dict[str, Any] = filed.json()
        return answer

    async def send(self, kind: str, case_id: str, who: str, reason: str = "r") -> Any:
        """POST a referral as `who`: the answer, a refusal or not."""
        body = {"kind": kind, "case_id": case_id, "reason": reason}
        return await self.post("/v1/referrals", body, who)

    async def refer(self, kind: str, case_id: str, who: str = "case-officer") -> dict[str, Any]:
        sent = await self.send(kind, case_id, who, f"{kind} by hand")
        assert sent.status_code == 201, sent.text
        answer: dict[str, Any] = sent.json()
        return answer


def _tokens(settings: Settings, folder: Path) -> TokenStore:
    """The development tokens, and a village patrol and a field chief of duizhen: loaded
    by the same loader production uses, townships checked."""
    document = yaml.safe_load(settings.api_tokens.read_text())
    document["tokens"] += [
        {
            "name": "patrol-duizhen-dongcun",
            "role": "village_patrol",
            "township": OWN_TOWNSHIP,
            "sha256": token_hash(PATROL_TOKEN),
        },
        {
            "name": "field-chief-duizhen",
            "role": "field_chief",
            "township": OWN_TOWNSHIP,
            "sha256": token_hash(CHIEF_TOKEN),
        },
    ]
    path = folder / "tokens.yaml"
    path.write_text(yaml.safe_dump(document))
    return TokenStore.load(path, townships=load_townships().keys())


@pytest.fixture
async def bus(
    settings: Settings,
    registry: Registry,
    queries: DepartmentQueries,
    checks: CentralChecks,
    tmp_path: Path,
) -> AsyncIterator[Bus]:
    app = create_app(settings, registry, queries, checks, _tokens(settings, tmp_path))
    async with in_process(app) as client:
        yield Bus(client, app, settings, registry)


def _steps(case: dict[str, Any]) -> list[str]:
    return [record["step"] for record in case["records"]]


async def test_the_threshold_refers_and_police_accept_then_open_a_case(
    bus: Bus, db: asyncpg.Pool
) -> None:
    filed = await bus.file(THRESHOLD)
    case_id = filed["case_id"]
    sent = {r["kind"]: r for r in filed["referrals"]}
    assert set(sent) == {"criminal", "discipline", "major_case_report"}
    assert sent["criminal"]["to"] == "public_security"
    case = (await bus.get(f"/v1/cases/{case_id}", "case-officer")).json()
    assert _steps(case)[:2] == ["filing", "accountability"]
    assert _steps(case)[2:] == ["referral_sent"] * 3

    police = "department-public_security"
    waiting = await bus.get("/v1/referrals", police, to="me", case=case_id)
    assert waiting.status_code == 200, waiting.text
    [criminal] = waiting.json()["referrals"]  # only the one sent to it
    assert criminal["status"] == "sent" and criminal["automatic"] is True
    path = f"/v1/referrals/{criminal['referral_id']}"

    acceptance = {"reference": "孝公（刑）立字〔2026〕88号"}
    accepted = await bus.post(f"{path}/acceptance", acceptance, police, **{"Idempotency-Key": "a1"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["reference"] == acceptance["reference"]
    assert accepted.json()["outcome_due_at"] is not None
    again = await bus.post(f"{path}/acceptance", acceptance, police, **{"Idempotency-Key": "a1"})
    assert again.json() == accepted.json()  # the retry: the first answer, nothing new
    twice = await bus.post(f"{path}/acceptance", {"reference": "other"}, police)
    assert twice.status_code == 409
    assert "is accepted: acceptance needs it sent" in twice.json()["error"]

    outcome = {"outcome": "case_opened", "decided_on": bus.today(), "note": "立案侦查"}
    opened = await bus.post(f"{path}/outcome", outcome, police)
    assert opened.status_code == 200, opened.text
    assert opened.json()["status"] == "answered" and opened.json()["outcome"] == "case_opened"

    case = (await bus.get(f"/v1/cases/{case_id}", "operator")).json()
    assert _steps(case).count("referral_acceptance") == 1  # the retry wrote no second one
    assert _steps(case)[-1] == "referral_outcome"
    audited = await db.fetch(
        "SELECT actor, action FROM audit_log WHERE case_id = $1 AND action LIKE 'referral%' "
        "ORDER BY seq",
        case_id,
    )
    assert [(a["actor"], a["action"]) for a in audited][-2:] == [
        ("public_security", "referral_acceptance"),
        ("public_security", "referral_outcome"),
    ]
    # the police read none of discipline's referrals, not even to know it exists
    other = await bus.get(f"/v1/referrals/{sent['discipline']['referral_id']}", police)
    assert other.status_code == 404


async def test_a_referral_left_unanswered_shows_overdue(bus: Bus) -> None:
    filed = await bus.file(THRESHOLD)
    report = next(r for r in filed["referrals"] if r["kind"] == "major_case_report")
    city = "department-city_government"
    mine = {"to": "me", "overdue": "true", "limit": 500}

    def listed(response: httpx.Response) -> dict[str, dict[str, Any]]:
        assert response.status_code == 200, response.text
        return {r["referral_id"]: r for r in response.json()["referrals"]}

    assert report["referral_id"] not in listed(await bus.get("/v1/referrals", city, **mine))
    later = utc_now() + timedelta(hours=25)  # the report was due within 24 hours
    bus.at(lambda: later)
    overdue = listed(await bus.get("/v1/referrals", city, **mine))
    assert overdue[report["referral_id"]]["overdue_for"] == "answer"
    discipline = "department-discipline"  # 72 hours: not yet late
    assert not any(
        r["case_id"] == filed["case_id"]
        for r in listed(await bus.get("/v1/referrals", discipline, **mine)).values()
    )
    shown = await bus.get(f"/v1/referrals/{report['referral_id']}", "operator")
    assert shown.json()["overdue"] is True
    # answered late: no longer overdue, and shown as late
    noted = await bus.post(
        f"/v1/referrals/{report['referral_id']}/acceptance",
        {"reference": "孝政办〔2026〕1号"},
        city,
    )
    assert noted.json()["answered_late"] is True and noted.json()["overdue"] is False


async def test_the_court_rules_on_compulsory_enforcement(bus: Bus) -> None:
    case_id = (await bus.file())["case_id"]
    refused = await bus.send("compulsory_enforcement", case_id, "department-housing")
    assert refused.status_code == 403
    assert "sent by natural_resources, not by housing" in refused.json()["error"]
    application = await bus.refer("compulsory_enforcement", case_id)
    assert application["to"] == "court" and application["sent_by"] == "natural_resources"
    path = f"/v1/referrals/{application['referral_id']}"
    ruling = {"outcome": "enforcement_granted", "decided_on": bus.today()}
    by_police = await bus.post(
        f"{path}/acceptance", {"reference": "x"}, "department-public_security"
    )
    assert by_police.status_code == 403
    assert "answered by court only" in by_police.json()["error"]
    court = "department-court"
    accepted = await bus.post(f"{path}/acceptance", {"reference": "(2026)晋1181行审88号"}, court)
    assert accepted.status_code == 200, accepted.text
    police_ruling = await bus.post(f"{path}/outcome", ruling, "department-public_security")
    assert police_ruling.status_code == 403
    ruled = await bus.post(f"{path}/outcome", ruling, court)
    assert ruled.status_code == 200, ruled.text
    assert ruled.json()["outcome"] == "enforcement_granted"


async def test_housing_refers_unpermitted_construction_to_urban_management(bus: Bus) -> None:
    case_id = (await bus.file())["case_id"]
    officer = await bus.send("unpermitted_construction", case_id, "case-officer")
    assert officer.status_code == 403
    sent = await bus.refer("unpermitted_construction", case_id, "department-housing")
    assert sent["to"] == "urban_management" and sent["sent_by"] == "housing"
    duplicate = await bus.send("unpermitted_construction", case_id, "department-housing", "again")
    assert duplicate.status_code == 409
    urban = "department-urban_management"
    waiting = (await bus.get("/v1/referrals", urban, to="me", case=case_id)).json()["referrals"]
    assert [r["referral_id"] for r in waiting] == [sent["referral_id"]]
    sent_by_housing = await bus.get(
        "/v1/referrals", "department-housing", case=case_id, **{"from": "me"}
    )
    assert [r["referral_id"] for r in sent_by_housing.json()["referrals"]] == [sent["referral_id"]]
    path = f"/v1/referrals/{sent['referral_id']}"
    assert (
        await bus.post(f"{path}/acceptance", {"reference": "孝城管立〔2026〕5号"}, urban)
    ).is_success
    done = await bus.post(
        f"{path}/outcome", {"outcome": "penalised", "decided_on": bus.today()}, urban
    )
    assert done.json()["status"] == "answered"


async def test_a_village_patrols_clue_becomes_a_case(bus: Bus, db: asyncpg.Pool) -> None:
    other = next(code for code in load_townships() if code != OWN_TOWNSHIP)
    clue = {
        "source": "patrol",
        "township": OWN_TOWNSHIP,
        "location": "兑镇镇东村北侧耕地",
        "description": "耕地上新建厂房地基",
        "reported_on": bus.today(),
    }
    elsewhere = await bus.post("/v1/clues", {**clue, "township": other}, "village-patrol")
    assert elsewhere.status_code == 403
    assert elsewhere.json()["errors"][0]["field"] == "township"
    chief_elsewhere = await bus.post("/v1/clues", {**clue, "township": other}, "field-chief")
    assert chief_elsewhere.status_code == 403
    for role in ("subscriber", "operator"):
        assert (await bus.post("/v1/clues", clue, role)).status_code == 403, role
    reported = await bus.post("/v1/clues", clue, "village-patrol")
    assert reported.status_code == 201, reported.text
    assert reported.json()["reported_by"] == {
        "name": "patrol-duizhen-dongcun",
        "role": "village_patrol",
        "body": None,
        "township": OWN_TOWNSHIP,
    }
    clue_id = reported.json()["clue_id"]
    by_department = await bus.post("/v1/clues", clue, "department-forestry")
    assert by_department.status_code == 201
    assert by_department.json()["reported_by"]["body"] == "forestry"
    # the patrol may not file the case: natural resources does, with the clue
    assert (await bus.post("/v1/cases", case_body(), "village-patrol")).status_code == 403
    filed = await bus.file(clue_id=clue_id, source="patrol")
    case = (await bus.get(f"/v1/cases/{filed['case_id']}", "case-officer")).json()
    assert case["clue_id"] == clue_id
    row = await db.fetchrow("SELECT case_id, reported_by FROM clues WHERE clue_id = $1", clue_id)
    assert row is not None and row["case_id"] == filed["case_id"]
    assert json.loads(row["reported_by"])["role"] == "village_patrol"  # a plain pool: text
    taken_twice = await bus.post("/v1/cases", case_body(clue_id=clue_id), "case-officer")
    assert taken_twice.status_code == 422


async def test_each_role_reaches_only_its_referrals(bus: Bus) -> None:
    filed = await bus.file(THRESHOLD)
    criminal = next(r for r in filed["referrals"] if r["kind"] == "criminal")
    path = f"/v1/referrals/{criminal['referral_id']}"
    for role in ("subscriber", "village-patrol", "agriculture-inspector"):
        assert (await bus.get("/v1/referrals", role)).status_code == 403, role
        assert (await bus.get(path, role)).status_code == 403, role
    assert (await bus.get(path, "operator")).status_code == 200
    assert (await bus.get(path, "case-officer")).status_code == 200
    assert (await bus.get(path, "department-public_security")).status_code == 200
    assert (await bus.get(path, "department-power_supply")).status_code == 404
    others = await bus.get("/v1/referrals", "department-power_supply", to="public_security")
    assert others.status_code == 403
    for role in ("case-officer", "operator", "department-discipline"):
        answer = await bus.post(f"{path}/acceptance", {"reference": "x"}, role)
        assert answer.status_code == 403, role
    by_patrol = {"kind": "criminal", "case_id": filed["case_id"], "reason": "r"}
    assert (await bus.post("/v1/referrals", by_patrol, "village-patrol")).status_code == 403


async def test_bad_input_names_the_field(bus: Bus) -> None:
    case_id = (await bus.file())["case_id"]

    async def refused(path: str, body: dict[str, Any], who: str = "case-officer") -> str:
        answer = await bus.post(path, body, who)
        assert answer.status_code == 422, answer.text
        field: str = answer.json()["errors"][0]["field"]
        return field

    assert (
        await refused("/v1/referrals", {"kind": "arson", "case_id": case_id, "reason": "r"})
        == "kind"
    )
    assert await refused("/v1/referrals", {"kind": "criminal", "reason": "r"}) == "case_id"
    assert await refused("/v1/referrals", {"kind": "criminal", "case_id": case_id}) == "reason"
    audit = {"kind": "audit_clue", "township": "atlantis", "reason": "r"}
    assert await refused("/v1/referrals", audit, "department-audit") == "township"
    sent = await bus.refer("compulsory_enforcement", case_id)
    path = f"/v1/referrals/{sent['referral_id']}"
    assert (
        await refused(f"{path}/acceptance", {"reference": "  "}, "department-court") == "reference"
    )
    ok = await bus.post(f"{path}/acceptance", {"reference": "R-1"}, "department-court")
    assert ok.status_code == 200
    unknown = {"outcome": "case_opened", "decided_on": bus.today()}
    assert await refused(f"{path}/outcome", unknown, "department-court") == "outcome"
    missing = await bus.send("criminal", "RL-1999-000000", "case-officer")
    assert missing.status_code == 404


async def test_an_audit_clue_names_a_township_for_discipline(bus: Bus) -> None:
    clue = {"kind": "audit_clue", "township": OWN_TOWNSHIP, "reason": "耕地保护履职不到位"}
    sent = await bus.post("/v1/referrals", clue, "department-audit")
    assert sent.status_code == 201, sent.text
    assert sent.json()["to"] == "discipline" and sent.json()["case_id"] is None
    path = f"/v1/referrals/{sent.json()['referral_id']}"
    assert (await bus.get(path, "case-officer")).status_code == 404  # not on a case
    refusal = await bus.post(f"{path}/refusal", {"reason": "线索不具体"}, "department-discipline")
    assert refusal.json()["status"] == "refused"
    assert refusal.json()["refusal_reason"] == "线索不具体"
