"""Township accountability on the real stack (PostgreSQL, the API with its token table):
a warning talk is requested, decided and its rectification deadline passes; the township
enters and submits its quarterly targets, the city receives them; the quarterly report
and the organisation department's assessment show it all. Time is an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from events.models import CaseDetails
from events.signing import TrustStore
from services.access import TokenStore
from services.bootstrap import bootstrap_registry, build_townships
from services.config import Settings
from services.entrypoints.api import create_app
from services.townships.directory import load_townships
from tests.support import bearer, case_body, in_process


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 4, 2, 2, 0, tzinfo=UTC)  # 10:00 in Xiaoyi

    def __call__(self) -> datetime:
        return self.now

    def at(self, text: str) -> None:
        self.now = datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class World:
    api: httpx.AsyncClient
    clock: Clock
    as_: Callable[[str], dict[str, str]]
    case_id: str


def figures(*, high_standard: tuple[str, str] = ("800", "800"), open_cases: int = 1) -> Any:
    def target(value: tuple[str, str]) -> dict[str, str]:
        return {"target": value[0], "achieved": value[1]}

    return {
        "targets": {
            "cultivated_land": target(("52000", "52010.5")),
            "basic_farmland": target(("41000", "41000")),
            "occupation_compensation": target(("30", "30")),
            "inflow_outflow": target(("12", "15")),
            "high_standard_farmland": target(high_standard),
        },
        "findings": {
            "cultivated_occupied_mu": "12.5",
            "basic_farmland_occupied_mu": "0",
            "restored_mu": "0",
            "open_cases": open_cases,
        },
        "note": "第二季度书面汇报",
    }


@pytest.fixture
async def world(own_database: Settings, trust: TrustStore) -> AsyncIterator[World]:
    """A database of its own holding one case of xinyi filed in 2025Q2 (12.5 mu of
    cultivated land), and the API over it with the township service on the test clock."""
    settings = own_database
    clock = Clock()
    async with bootstrap_registry(settings, clock) as registry:
        body = case_body(("cultivated", "12.5"), township="xinyi", found_on="2025-04-01")
        summary = await registry.file_case(CaseDetails.model_validate(body))
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            "UPDATE cases SET filed_at = '2025-04-02T10:00:00+08:00' WHERE case_id = $1",
            summary.case_id,
        )
    finally:
        await conn.close()
    tokens = TokenStore.load(settings.api_tokens, townships=load_townships())
    app = create_app(settings, tokens=tokens)
    app.state.townships = build_townships(settings, clock)

    def as_(name: str) -> dict[str, str]:
        return bearer(settings.home, name)

    async with in_process(app) as client:
        yield World(client, clock, as_, summary.case_id)


OFFICER, CITY, ORGANIZATION = (
    "case-officer",
    "department-city_government",
    "department-organization",
)
XINYI, DUIZHEN = "township-xinyi", "township-duizhen"


def _field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    field: str = response.json()["errors"][0]["field"]
    return field


async def test_a_talk_and_its_overdue_deadline_show_in_the_report_and_the_assessment(
    world: World,
) -> None:
    api, as_, clock = world.api, world.as_, world.clock
    # Natural resources requests a talk; a retry with the same key is the same talk.
    request = {"township": "xinyi", "reason": "违法占地整改不到位", "cases": [world.case_id]}
    key = {"Idempotency-Key": "talk-xinyi-1"}
    first = await api.post("/v1/talks", json=request, headers=as_(OFFICER) | key)
    assert first.status_code == 201, first.text
    talk = first.json()
    assert (talk["status"], talk["rectification"]) == ("requested", "none")
    retried = await api.post("/v1/talks", json=request, headers=as_(OFFICER) | key)
    assert retried.json()["talk_id"] == talk["talk_id"]
    reused = await api.post(
        "/v1/talks", json={**request, "reason": "另一事由"}, headers=as_(OFFICER) | key
    )
    assert _field(reused) == "Idempotency-Key"
    talk_id = talk["talk_id"]

    # Only the city government decides.
    decision = {"decision": "approve", "talk_on": "2025-04-20", "rectify_by": "2025-05-31"}
    path = f"/v1/talks/{talk_id}/decision"
    for who in (XINYI, ORGANIZATION, OFFICER):
        refused = await api.post(path, json=decision, headers=as_(who))
        assert refused.status_code == 403, who
    approved = await api.post(path, json=decision, headers=as_(CITY))
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["rectification"]) == ("approved", "open")
    again = await api.post(path, json=decision, headers=as_(CITY))
    assert again.status_code == 409 and "approved" in again.json()["error"]

    # The township enters, submits; the city government receives.
    report_path = "/v1/townships/xinyi/reports/2025Q2"
    clock.at("2025-06-10T02:00:00")
    entered = await api.put(
        report_path, json=figures(high_standard=("800", "650")), headers=as_(XINYI)
    )
    assert entered.status_code == 200, entered.text
    shown = entered.json()
    assert shown["status"] == "draft"
    assert shown["bus"]["cultivated_occupied_mu"] == "12.5"  # the bus's figure beside
    assert shown["bus"]["cases_filed"] == 1 and shown["bus"]["open_cases"] == 1
    checks = {(f["check"], f["item"]) for f in shown["findings"]}
    assert ("unmet_target", "high_standard_farmland") in checks
    assert ("to_verify", "cultivated_land") in checks  # met, yet 12.5 mu occupied, unrestored
    assert not any(f["check"] == "discrepancy" for f in shown["findings"])
    submitted = await api.post(report_path + "/submission", headers=as_(XINYI))
    assert submitted.json()["status"] == "submitted"
    changed = await api.put(report_path, json=figures(), headers=as_(XINYI))
    assert changed.status_code == 409
    received = await api.post(report_path + "/receipt", headers=as_(CITY))
    assert received.json()["status"] == "received"

    # The quarterly township report carries the targets and the overdue talk.
    quarterly = await api.get(
        "/v1/reports/township",
        params={"quarter": "2025Q2", "township": "xinyi"},
        headers=as_("operator"),
    )
    assert quarterly.status_code == 200, quarterly.text
    body = quarterly.json()
    [targets] = body["targets"]
    assert targets["status"] == "received"
    assert targets["unmet"] == ["高标准农田建设: 650 < 800 亩"]
    [shown_talk] = body["talks"]
    assert (shown_talk["talk_id"], shown_talk["rectify_by"]) == (talk_id, "2025-05-31")
    assert shown_talk["rectification"] == "overdue"
    csv = await api.get(
        "/v1/reports/township",
        params={"quarter": "2025Q2", "township": "xinyi", "format": "csv"},
        headers=as_("operator"),
    )
    assert "received" in csv.text and "650" in csv.text

    # The city government records criticism and a veto; the organisation department reads.
    criticism = {"year": 2025, "kind": "criticism", "text": "整改不到位，予以通报批评"}
    noticed = await api.post("/v1/townships/xinyi/notices", json=criticism, headers=as_(CITY))
    assert noticed.status_code == 201, noticed.text
    veto = {"year": 2025, "reason": "永久基本农田保护重大问题"}
    refused = await api.post("/v1/townships/xinyi/vetoes", json=veto, headers=as_(ORGANIZATION))
    assert refused.status_code == 403
    vetoed = await api.post("/v1/townships/xinyi/vetoes", json=veto, headers=as_(CITY))
    assert vetoed.status_code == 201
    twice = await api.post("/v1/townships/xinyi/vetoes", json=veto, headers=as_(CITY))
    assert twice.status_code == 409

    view = await api.get("/v1/assessments/2025", headers=as_(ORGANIZATION))
    assert view.status_code == 200, view.text
    rows = {row["township"]: row for row in view.json()["townships"]}
    assert set(rows) == set(load_townships())  # every township, recorded or not
    xinyi = rows["xinyi"]
    assert [t["rectification"] for t in xinyi["talks"]] == ["overdue"]
    assert xinyi["rectifications"] == {"met": 0, "met_late": 0, "overdue": 1, "open": 0}
    assert [n["text"] for n in xinyi["criticism"]] == [criticism["text"]]
    assert xinyi["veto"]["reason"] == veto["reason"]
    assert (xinyi["reports_submitted"], xinyi["reports_received"]) == (1, 1)
    quarters = {q["quarter"]: q for q in xinyi["quarters"]}
    assert quarters["2025Q1"]["status"] == "missing"
    assert quarters["2025Q2"]["unmet_targets"] == ["高标准农田建设: 完成 650 亩，低于目标 800 亩"]
    assert rows["duizhen"]["talks"] == [] and rows["duizhen"]["veto"] is None

    # Rectified after the deadline: late, no longer overdue.
    clock.at("2025-06-12T02:00:00")
    done = {"completed_on": "2025-06-11", "summary": "违法建筑已拆除，复耕完成"}
    own = f"/v1/townships/xinyi/talks/{talk_id}/rectification"
    other = await api.post(own, json=done, headers=as_(DUIZHEN))
    assert other.status_code == 403
    not_theirs = await api.post(
        f"/v1/townships/duizhen/talks/{talk_id}/rectification", json=done, headers=as_(DUIZHEN)
    )
    assert not_theirs.status_code == 404
    rectified = await api.post(own, json=done, headers=as_(XINYI))
    assert rectified.status_code == 200, rectified.text
    assert rectified.json()["rectification"] == "met_late"
    later = (await api.get("/v1/assessments/2025", headers=as_(CITY))).json()
    xinyi_later = next(row for row in later["townships"] if row["township"] == "xinyi")
    assert xinyi_later["rectifications"]["overdue"] == 0
    assert xinyi_later["rectifications"]["met_late"] == 1


async def test_each_role_is_kept_to_its_own(world: World) -> None:
    api, as_ = world.api, world.as_
    world.clock.at("2025-06-10T02:00:00")
    mine = await api.put(
        "/v1/townships/duizhen/reports/2025Q2", json=figures(), headers=as_(DUIZHEN)
    )
    assert mine.status_code == 200, mine.text
    # A township neither reads nor writes another township's report.
    for method in ("GET", "PUT"):
        other = await api.request(
            method,
            "/v1/townships/xinyi/reports/2025Q2",
            json=figures() if method == "PUT" else None,
            headers=as_(DUIZHEN),
        )
        assert other.status_code == 403, method
        assert "own township" in other.json()["error"]
    # Readers of the report: the city, the organisation department, officers, operators.
    for who in (CITY, ORGANIZATION, OFFICER, "operator"):
        read = await api.get("/v1/townships/duizhen/reports/2025Q2", headers=as_(who))
        assert read.status_code == 200 and read.json()["status"] == "draft", who
    # Neither a subscriber nor another department reads the assessment.
    for who in ("subscriber", "department-finance", DUIZHEN):
        refused = await api.get("/v1/assessments/2025", headers=as_(who))
        assert refused.status_code == 403, who
    assert (await api.get("/v1/assessments/2025", headers=as_("operator"))).status_code == 200
    listed = await api.get("/v1/talks", params={"year": "2025"}, headers=as_(ORGANIZATION))
    assert listed.status_code == 200 and listed.json() == []
    own = await api.get(
        "/v1/townships/duizhen/talks", params={"year": "2025"}, headers=as_(DUIZHEN)
    )
    assert own.status_code == 200
    assert (
        await api.get("/v1/talks", params={"year": "2025"}, headers=as_(DUIZHEN))
    ).status_code == 403
    # A township cannot request a talk, nor receive its own report.
    talk = {"township": "duizhen", "reason": "x"}
    assert (await api.post("/v1/talks", json=talk, headers=as_(DUIZHEN))).status_code == 403
    receipt = await api.post("/v1/townships/duizhen/reports/2025Q2/receipt", headers=as_(DUIZHEN))
    assert receipt.status_code == 403
    not_submitted = await api.post(
        "/v1/townships/duizhen/reports/2025Q2/receipt", headers=as_(CITY)
    )
    assert not_submitted.status_code == 409


@pytest.mark.parametrize(
    ("method", "path", "who", "body", "field"),
    [
        ("POST", "/v1/talks", OFFICER, {"township": "nanyang", "reason": "x"}, "township"),
        ("POST", "/v1/talks", OFFICER, {"township": "xinyi", "reason": " "}, "reason"),
        ("POST", "/v1/talks", OFFICER, {"township": "xinyi", "reason": "r", "x": 1}, "x"),
        (
            "PUT",
            "/v1/townships/xinyi/reports/2025Q2",
            XINYI,
            {**figures(), "findings": {**figures()["findings"], "restored_mu": "-1"}},
            "findings.restored_mu",
        ),
        (
            "PUT",
            "/v1/townships/xinyi/reports/2025Q2",
            XINYI,
            {**figures(), "targets": {**figures()["targets"], "basic_farmland": {"target": 1}}},
            "targets.basic_farmland.achieved",
        ),
        ("PUT", "/v1/townships/xinyi/reports/2025Q9", XINYI, figures(), "quarter"),
        ("PUT", "/v1/townships/xinyi/reports/2025Q4", XINYI, figures(), "quarter"),
        (
            "POST",
            "/v1/townships/xinyi/notices",
            CITY,
            {"year": 2025, "kind": "praise-ish", "text": "t"},
            "kind",
        ),
        ("POST", "/v1/townships/xinyi/vetoes", CITY, {"year": 2026, "reason": "r"}, "year"),
        ("POST", "/v1/townships/gone/vetoes", CITY, {"year": 2025, "reason": "r"}, "township"),
        ("GET", "/v1/assessments/25", ORGANIZATION, None, "year"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    world: World, method: str, path: str, who: str, body: Any, field: str
) -> None:
    world.clock.at("2025-06-10T02:00:00")
    response = await world.api.request(method, path, json=body, headers=world.as_(who))
    assert _field(response) == field
