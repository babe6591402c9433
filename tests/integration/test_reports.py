"""Reports on a real PostgreSQL: every figure cross-checked against independent SQL.

A database of its own gets a year of cases filed through the real Registry (a controlled
clock, timestamps the database stamps itself moved to the same instants), department
blocks written through the real department store and tracker rows through the real
feedback store. The reports are then read over HTTP and the CLI and compared with SQL
aggregates written separately from the report store's queries.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from demo import DemoGenerator, sign_off_jointly
from events.catalogue import Stage, load_catalogue
from events.identifiers import mask_identifier, mask_name
from events.land import LandClass
from events.models import CaseDetails, CorrectionDetails, Parcel, RestorationDetails
from events.signing import TrustStore
from services.access import TokenStore
from services.adapters.department_store import PostgresDepartmentStore
from services.adapters.feedback_store import PostgresFeedbackStore
from services.adapters.migrate import migrate
from services.adapters.postgres import create_pool
from services.bootstrap import bootstrap_registry, load_ranking_rule
from services.config import Settings
from services.departments.ports import BatchWrites, BlockApplied, BlockLifted, KnownCase, NewCase
from services.entrypoints.api import create_app
from services.entrypoints.report_commands import report_app
from services.feedback.domain import Action, Requirement
from services.feedback.ports import FeedbackWrites, Response
from services.registry.domain import Step
from services.registry.handlers import Registry
from services.registry.views import CaseSummary
from services.townships.directory import load_townships
from tests.conftest import Stack, create_database
from tests.support import bearer, in_process, nested_text

T = TypeVar("T", bound=BaseModel)
TZ = ZoneInfo("Asia/Shanghai")
CATALOGUE = load_catalogue()
TOWNSHIPS = load_townships()
# Departments whose tables this database holds; the others never ran here.
MIGRATED = ("finance", "banks", "power_supply", "transport", "development_reform", "housing")
CASES = 64
QUARTERS = ("2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1")
BOUND_DAYS = 90


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Dataset:
    settings: Settings
    url: str
    persons: dict[str, str] = field(default_factory=dict)  # id -> full name
    officers: set[str] = field(default_factory=set)
    revoked: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    publishable: list[str] = field(default_factory=list)


@dataclass
class _Event:
    """A case event that starts or lifts measures, at the instant it was recorded."""

    case: KnownCase
    stage: str  # filing, penalty, accountability, restoration_verified, revoked
    at: datetime


def _local_day(moment: datetime) -> date:
    return moment.astimezone(TZ).date()


class _Builder:
    def __init__(self, registry: Registry, clock: Clock, conn: asyncpg.Connection) -> None:
        self.registry = registry
        self.clock = clock
        self.conn = conn
        self.rng = random.Random(20250101)
        self.gen = DemoGenerator(2025, sorted(TOWNSHIPS), date(2025, 1, 5))
        self.events: list[_Event] = []

    async def _stamp(self, case_id: str, before: int, at: datetime) -> None:
        """Move what the database stamped with now() to the instant the clock said."""
        await self.conn.execute(
            "UPDATE case_records SET recorded_at = $3 WHERE case_id = $1 AND seq > $2",
            case_id,
            before,
            at,
        )
        await self.conn.execute("UPDATE cases SET updated_at = $2 WHERE case_id = $1", case_id, at)

    async def _seq(self, case_id: str) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT coalesce(max(seq), 0) FROM case_records WHERE case_id = $1", case_id
            )
        )

    def _at(self, moment: datetime) -> None:
        self.clock.now = moment
        self.gen.today = _local_day(moment)

    async def file(self, at: datetime, data: Dataset) -> tuple[str, KnownCase, CaseDetails]:
        self._at(at)
        details = self.gen.case_details()
        if self.rng.random() < 0.4:
            clue = await self.registry.report_clue(self.gen.clue(details))
            details = details.model_copy(update={"clue_id": clue.clue_id})
        summary = await self.registry.file_case(details)
        await self.conn.execute(
            "UPDATE cases SET filed_at = $2 WHERE case_id = $1", summary.case_id, at
        )
        await self._stamp(summary.case_id, 0, at)
        subject = details.subject
        if subject.kind == "person":
            data.persons[subject.id] = subject.name
        case = KnownCase(summary.case_id, details.township, subject.kind, subject.id, subject.name)
        self.events.append(_Event(case, "filing", at))
        if summary.accountability_started:
            self.events.append(_Event(case, "accountability", at))
        return summary.case_id, case, details

    async def step(self, case: KnownCase, step: Step, at: datetime, make: Callable[[], T]) -> T:
        """Record `step` at `at`, its details made once the clock says `at` (the generator
        dates them from its day); returns the details."""
        self._at(at)
        details = make()
        before = await self._seq(case.case_id)
        summary: CaseSummary
        if step is Step.restoration:  # both bodies sign off
            assert isinstance(details, RestorationDetails)
            summary = await sign_off_jointly(self.registry, case.case_id, details)
        else:
            summary = await self.registry.record_step(case.case_id, step, details)
        await self._stamp(case.case_id, before, at)
        stage = {
            Step.penalty: "penalty",
            Step.restoration: "restoration_verified",
            Step.revocation: "revoked",
        }.get(step)
        if stage:
            self.events.append(_Event(case, stage, at))
        if step is Step.correction and summary.accountability_started:
            self.events.append(_Event(case, "accountability", at))
        return details

    async def lifecycle(self, case: KnownCase, details: CaseDetails, filed: datetime) -> str:
        """Walk the case some way along its life; returns how far it went."""
        rng, gen = self.rng, self.gen
        area = sum((p.area_mu for p in details.parcels), Decimal(0))
        at = filed + timedelta(days=rng.randint(8, 50), hours=rng.randint(0, 20))
        draw = rng.random()
        if draw < 0.12:
            await self.step(case, Step.revocation, at, lambda: gen.revocation(details.found_on))
            return "revoked"
        if draw < 0.35:
            return "open"
        penalty = await self.step(
            case, Step.penalty, at, lambda: gen.penalty(details.found_on, area)
        )
        if draw < 0.45:
            return "decided"
        if draw < 0.5:
            at += timedelta(days=rng.randint(5, 30))
            await self.step(case, Step.revocation, at, lambda: gen.revocation(penalty.decided_on))
            return "revoked"
        at += timedelta(days=rng.randint(5, 40), hours=rng.randint(0, 20))
        rectification = await self.step(
            case, Step.rectification, at, lambda: gen.rectification(penalty.decided_on)
        )
        if draw < 0.6:
            return "rectified"
        at += timedelta(days=rng.randint(5, 40), hours=rng.randint(0, 20))
        restoration = await self.step(
            case, Step.restoration, at, lambda: gen.restoration(rectification.completed_on)
        )
        if draw < 0.8:
            return "restored"
        at += timedelta(days=rng.randint(1, 10))
        await self.step(case, Step.closure, at, lambda: gen.closure(restoration.verified_on))
        return "closed"


def _area_corrected() -> CorrectionDetails:
    return CorrectionDetails(
        parcels=[Parcel(land_class=LandClass.cultivated, area_mu=Decimal("12.5"))],
        reason="复测面积更正",
    )


def _filing_instants(rng: random.Random) -> list[datetime]:
    start = datetime(2025, 1, 5, tzinfo=UTC)
    span = (datetime(2025, 12, 20, tzinfo=UTC) - start).total_seconds()
    instants = [start + timedelta(seconds=rng.uniform(0, span)) for _ in range(CASES - 5)]
    # Either side of local midnight at the quarter turns: UTC and Xiaoyi disagree here.
    instants += [
        datetime(2025, 6, 30, 16, 30, tzinfo=UTC),  # 00:30 on 1 July in Xiaoyi: Q3
        datetime(2025, 6, 30, 17, 0, tzinfo=UTC),  # 01:00 on 1 July in Xiaoyi: Q3
        datetime(2025, 6, 30, 15, 59, 59, tzinfo=UTC),  # 23:59:59 on 30 June: Q2
        datetime(2025, 9, 30, 16, 0, tzinfo=UTC),  # exactly midnight on 1 October: Q4
        datetime(2025, 3, 31, 15, 59, 59, 999999, tzinfo=UTC),  # last instant of Q1
    ]
    return sorted(instants)


async def _department_data(
    pool: Any, events: list[_Event], rng: random.Random, now: datetime
) -> None:
    """What each department owed (tracker) and, where its tables exist, what it did."""
    required: list[Requirement] = []
    responses: list[Response] = []
    known: dict[str, dict[str, KnownCase]] = defaultdict(dict)
    applied: dict[tuple[str, str, str], datetime] = {}
    writes: dict[str, BatchWrites] = {
        code: BatchWrites(cases=[], applied=[], lifted=[], outgoing=[]) for code in MIGRATED
    }
    for event in sorted(events, key=lambda e: e.at):
        for department in CATALOGUE.departments:
            if department.code in MIGRATED and event.case.case_id not in known[department.code]:
                known[department.code][event.case.case_id] = event.case
                writes[department.code].cases.append(NewCase(event.case, str(uuid.uuid4())))
            for measure in department.measures:
                key = (event.case.case_id, department.code, measure.code)
                action: Action
                if event.stage in {stage.value for stage in Stage}:
                    if measure.starts_at.value != event.stage:
                        continue
                    action = "apply"
                elif event.stage in measure.lifted_by and key in applied:
                    action = "lift"
                else:
                    continue
                deadline = timedelta(hours=measure.response_deadline_hours)
                required.append(
                    Requirement(
                        event.case.case_id,
                        department.code,
                        measure.code,
                        action,
                        event.at,
                        event.at + deadline,
                        str(uuid.uuid4()),
                    )
                )
                outcome = rng.choices(["on_time", "late", "failed", "none"], [60, 20, 5, 15])[0]
                if action == "lift" and outcome == "failed":
                    outcome = "none"
                if outcome == "none":
                    continue
                if outcome == "failed":
                    responses.append(
                        Response(
                            *key, "apply", event.at, str(uuid.uuid4()), error="system unavailable"
                        )
                    )
                    continue
                hours = rng.uniform(0.05, measure.response_deadline_hours)
                if outcome == "late":
                    hours = measure.response_deadline_hours + rng.uniform(0.5, 200)
                done = event.at + timedelta(hours=hours)
                if action == "apply":
                    applied[key] = done
                else:
                    done = max(done, applied[key] + timedelta(hours=1))
                responses.append(Response(*key, action, done, str(uuid.uuid4()), reference="R1"))
                if department.code in MIGRATED:
                    batch = writes[department.code]
                    if action == "apply":
                        batch.applied.append(
                            BlockApplied(measure.code, event.case, measure.legal_basis, done, "e")
                        )
                    else:
                        batch.lifted.append(
                            BlockLifted(measure.code, event.case.case_id, event.stage, done, "e")
                        )
    # Requirements made today are not yet due, and an answer without a requirement (the two
    # topics read out of step) is no requirement at all.
    for code in ("finance", "banks", "agriculture"):
        measure = CATALOGUE.department(code).measures[0]
        required.append(
            Requirement(
                "RL-PENDING",
                code,
                measure.code,
                "apply",
                now - timedelta(hours=1),
                now + timedelta(hours=23),
                "pending",
            )
        )
    responses.append(
        Response("RL-ORPHAN", "finance", "refuse_fiscal_funding", "apply", now, "orphan")
    )
    feedback = PostgresFeedbackStore(pool)
    async with feedback.transaction() as tx:
        await tx.record(FeedbackWrites(required, responses))
    for code, batch in writes.items():
        async with PostgresDepartmentStore(pool, code).transaction() as dtx:
            await dtx.write(batch)


@pytest.fixture(scope="module")
async def dataset(stack: Stack, settings: Settings) -> AsyncIterator[Dataset]:
    url = await create_database(stack)
    own = settings.with_endpoints(stack.kafka, url)
    for code in MIGRATED:
        await migrate(url, package="services.departments.migrations", schema=f"dept_{code}")
    data = Dataset(own, url)
    clock = Clock()
    conn = await asyncpg.connect(url)
    try:
        async with bootstrap_registry(own, clock) as registry:
            builder = _Builder(registry, clock, conn)
            filed: list[tuple[KnownCase, CaseDetails, datetime, str]] = []
            for at in _filing_instants(builder.rng):
                _, case, details = await builder.file(at, data)
                filed.append((case, details, at, ""))
            for index, (case, details, at, _) in enumerate(filed):
                outcome = await builder.lifecycle(case, details, at)
                filed[index] = (case, details, at, outcome)
            # A survey corrected later starts accountability in a later quarter.
            opened = [item for item in filed if item[3] == "open"][:2]
            for case, _, at, _ in opened:
                later = at + timedelta(days=40)
                await builder.step(case, Step.correction, later, _area_corrected)
            data.officers = set(builder.gen.nr_officers) | set(builder.gen.agriculture_officers)
            for case, _, _, outcome in filed:
                if outcome == "revoked":
                    data.revoked.append(case.case_id)
                elif outcome == "open":
                    data.undecided.append(case.case_id)
                else:
                    data.publishable.append(case.case_id)
        pool = await create_pool(url)
        try:
            await _department_data(pool, builder.events, builder.rng, datetime.now(UTC))
        finally:
            await pool.close()
    finally:
        await conn.close()
    assert data.revoked and data.undecided and data.publishable, "the data set lacks a kind"
    yield data


@pytest.fixture(scope="module")
async def sql(dataset: Dataset) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(dataset.url, min_size=1, max_size=2) as pool:
        yield pool


@pytest.fixture
async def api(
    dataset: Dataset,
    trust: TrustStore,  # made the development keys, and with them the tokens
) -> AsyncIterator[httpx.AsyncClient]:
    settings = dataset.settings
    app = create_app(settings, tokens=TokenStore.load(settings.api_tokens))
    async with in_process(app, bearer(settings.home, "operator")) as client:
        yield client


async def _json(api: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _bounds(period: str) -> tuple[date, date]:
    year = int(period[:4])
    if "Q" not in period:
        return date(year, 1, 1), date(year, 12, 31)
    quarter = int(period[-1])
    first = date(year, 3 * quarter - 2, 1)
    last = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return first, last - timedelta(days=1)


# --- independent SQL -----------------------------------------------------------------

LOCAL = "AT TIME ZONE 'Asia/Shanghai'"


async def _expected_townships(
    sql: asyncpg.Pool, first: date, last: date
) -> dict[str, dict[str, Any]]:
    expected: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "clues": defaultdict(int),
            "filed": 0,
            "area": defaultdict(Decimal),
            "cultivated": Decimal(0),
            "basic": Decimal(0),
            "accountability": 0,
            "applied": 0,
            "lifted": 0,
            "restorations": 0,
            "open": [],
        }
    )
    for row in await sql.fetch(
        "SELECT township, source, count(*) AS n FROM clues "
        "WHERE reported_on >= $1 AND reported_on <= $2 GROUP BY 1, 2",
        first,
        last,
    ):
        expected[row["township"]]["clues"][row["source"]] = row["n"]
    in_period = f"(x {LOCAL})::date BETWEEN $1 AND $2"
    for row in await sql.fetch(
        "SELECT township, count(*) AS n, sum(cultivated_mu) AS cultivated, "
        "sum(basic_farmland_mu) AS basic FROM cases "
        f"WHERE {in_period.replace('x', 'filed_at')} GROUP BY 1",
        first,
        last,
    ):
        figures = expected[row["township"]]
        figures["filed"], figures["cultivated"], figures["basic"] = (
            row["n"],
            row["cultivated"],
            row["basic"],
        )
    for row in await sql.fetch(
        "SELECT c.township, p->>'land_class' AS land_class, sum((p->>'area_mu')::numeric) AS mu "
        "FROM cases c, jsonb_array_elements(c.parcels) p "
        f"WHERE {in_period.replace('x', 'c.filed_at')} GROUP BY 1, 2",
        first,
        last,
    ):
        expected[row["township"]]["area"][row["land_class"]] = row["mu"]
    for row in await sql.fetch(
        "SELECT township, count(*) AS n FROM cases "
        f"WHERE {in_period.replace('x', 'accountability_started_at')} GROUP BY 1",
        first,
        last,
    ):
        expected[row["township"]]["accountability"] = row["n"]
    for code in MIGRATED:
        for column, name in (("applied_at", "applied"), ("lifted_at", "lifted")):
            for row in await sql.fetch(
                f"SELECT c.township, count(*) AS n FROM dept_{code}.blocks b "
                f"JOIN dept_{code}.cases c USING (case_id) "
                f"WHERE {in_period.replace('x', 'b.' + column)} GROUP BY 1",
                first,
                last,
            ):
                expected[row["township"]][name] += row["n"]
    for row in await sql.fetch(
        "SELECT c.township, count(*) AS n FROM case_records r JOIN cases c USING (case_id) "
        "WHERE r.step = 'restoration' AND (r.data->>'verified_on')::date BETWEEN $1 AND $2 "
        "GROUP BY 1",
        first,
        last,
    ):
        expected[row["township"]]["restorations"] = row["n"]
    as_of = f"(($2::date + 1)::timestamp {LOCAL})"
    for row in await sql.fetch(
        "SELECT township, array_agg(case_id ORDER BY case_id) AS ids FROM cases c "
        f"WHERE filed_at < {as_of} - make_interval(days => $1) AND NOT EXISTS ("
        "  SELECT 1 FROM case_records r WHERE r.case_id = c.case_id "
        f"  AND r.step IN ('restoration', 'revocation', 'closure') AND r.recorded_at < {as_of}"
        ") GROUP BY 1",
        BOUND_DAYS,
        last,
    ):
        expected[row["township"]]["open"] = list(row["ids"])
    return {
        code: figures
        for code, figures in expected.items()
        if any(
            (
                sum(figures["clues"].values()),
                figures["filed"],
                figures["accountability"],
                figures["applied"],
                figures["lifted"],
                figures["restorations"],
                figures["open"],
            )
        )
    }


def _check_township_row(row: dict[str, Any], want: dict[str, Any]) -> None:
    where = f"{row['township']}"
    assert row["township_name"] == TOWNSHIPS[row["township"]].name
    assert row["clues_by_source"] == {
        source: want["clues"].get(source, 0) for source in row["clues_by_source"]
    }, where
    assert set(want["clues"]) <= set(row["clues_by_source"])
    assert row["clues_total"] == sum(want["clues"].values()), where
    assert row["cases_filed"] == want["filed"], where
    areas = {cls: Decimal(mu) for cls, mu in row["area_mu_by_land_class"].items()}
    assert areas == {cls: want["area"].get(cls, Decimal(0)) for cls in areas}, where
    assert Decimal(row["cultivated_land_mu"]) == (want["cultivated"] or Decimal(0)), where
    assert areas["permanent_basic_farmland"] == (want["basic"] or Decimal(0)), where
    assert row["accountability_referrals"] == want["accountability"], where
    assert row["measures_applied"] == want["applied"], where
    assert row["measures_lifted"] == want["lifted"], where
    assert row["restorations_verified"] == want["restorations"], where
    assert row["open_case_ids"] == want["open"], where
    assert row["open_cases_over_bound"] == len(want["open"]), where


async def test_township_reports_agree_with_the_registry_and_department_tables(
    api: httpx.AsyncClient, sql: asyncpg.Pool
) -> None:
    seen: defaultdict[str, int] = defaultdict(int)
    for quarter in QUARTERS:
        report = await _json(api, "/v1/reports/township", quarter=quarter)
        first, last = _bounds(quarter)
        assert (report["first_day"], report["last_day"]) == (str(first), str(last))
        assert report["departments_read"] == [c for c in CATALOGUE.codes if c in MIGRATED]
        expected = await _expected_townships(sql, first, last)
        assert [row["township"] for row in report["rows"]] == [
            code for code in TOWNSHIPS if code in expected
        ], quarter
        for row in report["rows"]:
            _check_township_row(row, expected[row["township"]])
        totals = report["totals"]
        assert totals["cases_filed"] == sum(w["filed"] for w in expected.values())
        assert totals["measures_applied"] == sum(w["applied"] for w in expected.values())
        for row in report["rows"]:
            for name in ("cases_filed", "measures_applied", "measures_lifted",
                         "restorations_verified", "accountability_referrals",
                         "open_cases_over_bound", "clues_total"):  # fmt: skip
                seen[name] += row[name]
    # The data set exercises every figure, so a figure stuck at zero would be caught.
    assert all(seen[name] > 0 for name in seen), dict(seen)
    assert seen["cases_filed"] == CASES


async def test_the_quarter_turns_at_local_midnight(
    api: httpx.AsyncClient, sql: asyncpg.Pool
) -> None:
    q2 = await _json(api, "/v1/reports/township", quarter="2025Q2")
    q3 = await _json(api, "/v1/reports/township", quarter="2025Q3")
    utc_q3 = await sql.fetchval(
        "SELECT count(*) FROM cases WHERE filed_at >= '2025-07-01T00:00Z' "
        "AND filed_at < '2025-10-01T00:00Z'"
    )
    local_q3 = await sql.fetchval(
        "SELECT count(*) FROM cases WHERE filed_at >= '2025-07-01T00:00+08' "
        "AND filed_at < '2025-10-01T00:00+08'"
    )
    assert q3["totals"]["cases_filed"] == local_q3
    assert local_q3 != utc_q3  # the boundary cases make the time zone matter
    both = q2["totals"]["cases_filed"] + q3["totals"]["cases_filed"]
    assert both == await sql.fetchval(
        "SELECT count(*) FROM cases WHERE filed_at >= '2025-04-01T00:00+08' "
        "AND filed_at < '2025-10-01T00:00+08'"
    )


async def test_one_township_is_its_row_of_the_full_report(api: httpx.AsyncClient) -> None:
    full = await _json(api, "/v1/reports/township", quarter="2025Q3")
    row = full["rows"][0]
    one = await _json(api, "/v1/reports/township", quarter="2025Q3", township=row["township"])
    assert one["rows"] == [row]
    assert one["totals"]["cases_filed"] == row["cases_filed"]


async def _expected_departments(
    sql: asyncpg.Pool, first: date, last: date
) -> dict[str, dict[str, Any]]:
    rows = await sql.fetch(
        "SELECT department, count(*) AS required, "
        "count(*) FILTER (WHERE action = 'lift') AS lifts_required, "
        "count(*) FILTER (WHERE done_at <= due_at) AS on_time, "
        "count(*) FILTER (WHERE done_at > due_at) AS late, "
        "count(*) FILTER (WHERE done_at IS NULL AND failed_at IS NOT NULL) AS failed, "
        "count(*) FILTER (WHERE done_at IS NULL AND failed_at IS NULL AND due_at < now()) "
        "  AS unanswered, "
        "count(*) FILTER (WHERE done_at IS NULL AND failed_at IS NULL AND due_at >= now()) "
        "  AS pending, "
        # greatest() skips NULLs, so the unanswered are filtered out explicitly.
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(0, extract(epoch FROM "
        "  done_at - required_at))) FILTER (WHERE done_at IS NOT NULL) / 3600 AS median, "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY greatest(0, extract(epoch FROM "
        "  done_at - required_at))) FILTER (WHERE done_at IS NOT NULL) / 3600 AS p95 "
        f"FROM responses WHERE (required_at {LOCAL})::date BETWEEN $1 AND $2 GROUP BY 1",
        first,
        last,
    )
    return {row["department"]: dict(row) for row in rows}


@pytest.mark.parametrize(
    "period", ["2025Q1", "2025Q2", "2025Q3", "2025Q4", "2025", "2025-06-15..2025-07-15", "2026Q4"]
)
async def test_department_records_agree_with_the_tracker(
    api: httpx.AsyncClient, sql: asyncpg.Pool, period: str
) -> None:
    report = await _json(api, "/v1/reports/departments", period=period)
    if ".." in period:
        first, last = (date.fromisoformat(day) for day in period.split(".."))
    else:
        first, last = _bounds(period)
    expected = await _expected_departments(sql, first, last)
    assert [row["department"] for row in report["rows"]] == [
        code for code in CATALOGUE.codes if code in expected
    ]
    assert expected, f"no requirement in {period}: the data set misses it"
    for row in report["rows"]:
        want = expected[row["department"]]
        for name in ("required", "lifts_required", "on_time", "late", "failed"):
            assert row[name] == want[name], (row["department"], name)
        assert row["unanswered"] == want["unanswered"], row["department"]
        assert row["pending"] == want["pending"], row["department"]
        for name in ("median", "p95"):
            got = row[f"{name}_response_hours" if name == "median" else "p95_response_hours"]
            if want[name] is None:
                assert got is None
            else:
                assert got == pytest.approx(want[name], abs=0.006), (row["department"], name)
        decided = want["required"] - want["pending"]
        if decided:
            assert row["on_time_rate"] == pytest.approx(100 * want["on_time"] / decided, abs=0.06)
    totals = report["totals"]
    assert totals["required"] == sum(w["required"] for w in expected.values())
    if period == "2026Q4":
        assert totals["pending"] == 3  # required an hour ago, due tomorrow
        assert [row["department"] for row in report["rows"]] == ["finance", "agriculture", "banks"]
    else:
        assert totals["late"] > 0 and totals["unanswered"] > 0 and totals["on_time"] > 0


async def test_the_satellite_ranking_agrees_with_the_registry(
    api: httpx.AsyncClient, sql: asyncpg.Pool
) -> None:
    report = await _json(api, "/v1/reports/ranking", year="2025")
    rows = await sql.fetch(
        "SELECT township, count(*) AS cases, sum(basic_farmland_mu) AS basic, "
        "sum(cultivated_mu) AS cultivated, "
        "count(*) FILTER (WHERE basic_farmland_mu >= 5 OR cultivated_mu >= 10) AS large "
        "FROM cases c WHERE source = 'satellite' AND found_on BETWEEN '2025-01-01' AND "
        "'2025-12-31' AND NOT EXISTS (SELECT 1 FROM case_records r WHERE "
        "r.case_id = c.case_id AND r.step = 'revocation') GROUP BY 1"
    )
    expected = {row["township"]: row for row in rows}
    assert len(expected) >= 3
    assert {row["township"] for row in report["rows"]} == set(expected)
    rule = load_ranking_rule()  # the city's rule (services/reports/city.yaml), not 5/10 mu
    assert report["rule"] == rule.describe()
    areas = [Decimal(row["cultivated_mu"]) for row in report["rows"]]
    assert areas == sorted(areas, reverse=True)
    for position, row in enumerate(report["rows"], start=1):
        want = expected[row["township"]]
        assert row["cases"] == want["cases"]
        assert Decimal(row["basic_farmland_mu"]) == want["basic"]
        assert Decimal(row["cultivated_mu"]) == want["cultivated"]
        assert row["large_cases"] == want["large"]
        assert row["flagged"] == bool(
            (rule.top and row["rank"] <= rule.top and want["cultivated"] > 0)
            or (rule.cultivated_mu is not None and want["cultivated"] >= rule.cultivated_mu)
            or (rule.basic_farmland_mu is not None and want["basic"] >= rule.basic_farmland_mu)
        )
        assert row["rank"] <= position
    assert report["rows"][0]["rank"] == 1
    large = await sql.fetchval(
        "SELECT count(*) FROM cases c WHERE source = 'satellite' AND found_on "
        "BETWEEN '2025-01-01' AND '2025-12-31' AND (basic_farmland_mu >= 5 OR cultivated_mu >= 10) "
        "AND NOT EXISTS (SELECT 1 FROM case_records r WHERE r.case_id = c.case_id "
        "AND r.step = 'revocation')"
    )
    assert len(report["large_cases"]) == large
    assert report["revoked_excluded"] == await sql.fetchval(
        "SELECT count(*) FROM cases c WHERE source = 'satellite' AND found_on "
        "BETWEEN '2025-01-01' AND '2025-12-31' AND EXISTS (SELECT 1 FROM case_records r "
        "WHERE r.case_id = c.case_id AND r.step = 'revocation')"
    )


def _parsed(html: str) -> str:
    text = nested_text(html)
    assert html.startswith("<!DOCTYPE html>")
    return text


async def test_the_public_notice_publishes_decided_cases_masked(
    api: httpx.AsyncClient, sql: asyncpg.Pool, dataset: Dataset
) -> None:
    notice = await _json(api, "/v1/reports/notice", since="2025-01-01")
    expected = {
        row["case_id"]
        for row in await sql.fetch(
            "SELECT DISTINCT c.case_id FROM cases c JOIN case_records p ON p.case_id = c.case_id "
            "AND p.step = 'penalty' WHERE NOT EXISTS (SELECT 1 FROM case_records r "
            "WHERE r.case_id = c.case_id AND r.step = 'revocation') "
            # `since`: decided, or closed, on or after that day (a case found late in 2024
            # may have been decided before the year began)
            "AND ((p.data->>'decided_on')::date >= '2025-01-01' OR EXISTS (SELECT 1 FROM "
            "case_records k WHERE k.case_id = c.case_id AND k.step = 'closure' "
            "AND (k.data->>'closed_on')::date >= '2025-01-01'))"
        )
    }
    assert [case["case_id"] for case in notice["cases"]] == sorted(expected)
    assert set(dataset.revoked).isdisjoint(expected)
    subjects = {
        row["case_id"]: row
        for row in await sql.fetch(
            "SELECT case_id, subject_kind, subject_id, subject_name FROM cases"
        )
    }
    persons = 0
    for case in notice["cases"]:
        raw = subjects[case["case_id"]]
        assert case["subject_id"] == mask_identifier(raw["subject_id"])
        if raw["subject_kind"] == "person":
            persons += 1
            assert case["subject_name"] == mask_name(raw["subject_name"])
        decided = await sql.fetchval(
            "SELECT data->>'decided_on' FROM case_records WHERE case_id = $1 AND step = 'penalty'",
            case["case_id"],
        )
        assert case["decided_on"] == decided
    assert persons > 0, "no person among the published subjects: masking is untested"

    html = (
        await api.get("/v1/reports/notice", params={"since": "2025-01-01", "format": "html"})
    ).text
    text = (
        await api.get("/v1/reports/notice", params={"since": "2025-01-01", "format": "csv"})
    ).text
    visible = _parsed(html)
    for published in (html, text, visible):
        for subject_id, name in dataset.persons.items():
            assert subject_id not in published
            assert name not in published
        for row in subjects.values():
            assert row["subject_id"] not in published
        for officer in dataset.officers:
            assert officer not in published
    assert notice["cases"][0]["case_id"] in visible


async def test_named_cases_are_checked_before_publishing(
    api: httpx.AsyncClient, dataset: Dataset
) -> None:
    chosen = dataset.publishable[:2]
    notice = await _json(api, "/v1/reports/notice", case=chosen)
    assert [case["case_id"] for case in notice["cases"]] == sorted(chosen)
    for case_id, reason in (
        (dataset.revoked[0], "revoked by a court"),
        (dataset.undecided[0], "no penalty decided yet"),
        ("RL-1999-000001", "no case 'RL-1999-000001'"),
    ):
        refused = await api.get("/v1/reports/notice", params={"case": [chosen[0], case_id]})
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["field"] == "case"
        assert reason in error["reason"]


@pytest.mark.parametrize(
    ("path", "params", "kind"),
    [
        ("/v1/reports/township", {"quarter": "2024Q1"}, "no activity recorded"),
        ("/v1/reports/departments", {"period": "2024"}, "no requirement in this period"),
        ("/v1/reports/ranking", {"year": "2023"}, "no satellite findings"),
        ("/v1/reports/notice", {"since": "2026-06-01"}, "no publishable case"),
    ],
)
async def test_an_empty_period_gives_an_empty_report(
    api: httpx.AsyncClient, path: str, params: dict[str, str], kind: str
) -> None:
    body = await _json(api, path, **params)
    assert body.get("rows", body.get("cases")) == []
    html = await api.get(path, params={**params, "format": "html"})
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert kind in _parsed(html.text)
    text = await api.get(path, params={**params, "format": "csv"})
    assert text.headers["content-type"].startswith("text/csv")
    assert len(list(csv.reader(io.StringIO(text.text.removeprefix("\ufeff"))))) == 1


@pytest.mark.parametrize(
    ("path", "params", "field", "reason"),
    [
        ("/v1/reports/township", {"quarter": "2026Q5"}, "quarter", "must be 1 to 4, got 5"),
        ("/v1/reports/township", {"quarter": "2030Q1"}, "quarter", "has not begun yet"),
        (
            "/v1/reports/township",
            {"quarter": "2025Q3", "township": "atlantis"},
            "township",
            "unknown township 'atlantis'",
        ),
        ("/v1/reports/township", {}, "quarter", "Field required"),
        (
            "/v1/reports/township",
            {"quarter": "2025Q3", "format": "xml"},
            "format",
            "'json', 'csv' or 'html'",
        ),
        (
            "/v1/reports/departments",
            {"period": "2025", "department": "nobody"},
            "department",
            "unknown department 'nobody'",
        ),
        ("/v1/reports/departments", {"period": "2025-13-01..2025-12-31"}, "period", "a date"),
        ("/v1/reports/ranking", {"year": "25"}, "year", "expected a year such as 2026"),
        ("/v1/reports/notice", {}, "case", "either case ids or since"),
        ("/v1/reports/notice", {"since": "yesterday"}, "since", "expected a date"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    api: httpx.AsyncClient, path: str, params: dict[str, str], field: str, reason: str
) -> None:
    refused = await api.get(path, params=params)
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert [error["field"] for error in errors] == [field]
    assert reason in errors[0]["reason"]


def _cli(dataset: Dataset, *args: str) -> Any:
    env = {
        "KAFKA_BOOTSTRAP": dataset.settings.kafka_bootstrap or "",
        "DATABASE_URL": dataset.url,
        "REDLINE_HOME": str(dataset.settings.home),
    }
    return CliRunner().invoke(report_app, list(args), env=env)


async def test_the_cli_writes_the_same_figures_the_api_serves(
    api: httpx.AsyncClient, sql: asyncpg.Pool, dataset: Dataset, tmp_path: Path
) -> None:
    cases = [f"--case={case_id}" for case_id in dataset.publishable[:3]]
    # one township with a case filed in the quarter, so its report has a row
    township = await sql.fetchval(
        "SELECT township FROM cases WHERE filed_at >= '2025-10-01' AND filed_at < '2025-12-31' "
        "GROUP BY township ORDER BY count(*) DESC, township LIMIT 1"
    )
    runs = [
        (["township", "--quarter", "2025Q3"], "/v1/reports/township", {"quarter": "2025Q3"}),
        (
            ["township", "--quarter", "2025Q4", "--township", township, "--older-than-days", "30"],
            "/v1/reports/township",
            {"quarter": "2025Q4", "township": township, "older_than_days": "30"},
        ),
        (["departments", "--period", "2025"], "/v1/reports/departments", {"period": "2025"}),
        (["ranking", "--year", "2025"], "/v1/reports/ranking", {"year": "2025"}),
        (["notice", *cases], "/v1/reports/notice", {"case": dataset.publishable[:3]}),
    ]
    for args, path, params in runs:
        out = tmp_path / args[0]
        # The CLI runs its own event loop, so it gets a thread of its own.
        result = await asyncio.to_thread(_cli, dataset, *args, "--out", str(out))
        assert result.exit_code == 0, result.output
        written = [Path(line) for line in result.stdout.splitlines()]
        assert [p.suffix for p in written] == [".csv", ".html"]
        served = await api.get(path, params={**params, "format": "csv"})
        assert served.status_code == 200, served.text
        assert written[0].read_bytes() == served.content, args
        disposition = served.headers["content-disposition"]
        assert f'filename="{written[0].name}"' in disposition
        _parsed(written[1].read_text(encoding="utf-8"))
        assert len(served.text.splitlines()) > 1, f"{args}: the report is empty"


async def test_the_cli_refuses_bad_input_with_exit_code_2(dataset: Dataset, tmp_path: Path) -> None:
    result = await asyncio.to_thread(
        _cli, dataset, "township", "--quarter", "2026Q5", "--out", str(tmp_path)
    )
    assert result.exit_code == 2
    assert "error: invalid input: --quarter: the quarter must be 1 to 4, got 5" in result.stderr
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []
    unknown = await asyncio.to_thread(
        _cli,
        dataset,
        "departments",
        "--period",
        "2025",
        "--department",
        "x",
        "--out",
        str(tmp_path),
    )
    assert unknown.exit_code == 2
    assert "--department: unknown department 'x'" in unknown.stderr
