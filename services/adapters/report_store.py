"""PostgreSQL reads for the reports: read-only, one REPEATABLE READ snapshot per report.

Periods arrive as instants already placed in the deployment time zone (`Window`), so a
timestamp column is compared with local midnights and a date column with local days.
Department tables are read from each department's schema where this database has it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg

from services.adapters.department_store import department_schema
from services.adapters.postgres import own_transaction
from services.reports.notice import NoticeSourceRow, RecordRow
from services.reports.outcomes import ResponseRow
from services.reports.periods import Window
from services.reports.ports import ReportReads, ReportStore
from services.reports.ranking import SatelliteCaseRow
from services.reports.township import (
    ENDING_STEPS,
    AccountabilityRow,
    BlockRow,
    ClueRow,
    FiledCaseRow,
    OpenCaseRow,
    RestorationRow,
)
from services.reports.township_targets import TalkRow, TargetRow

RowT = TypeVar("RowT")


def _parcels(raw: Any) -> tuple[tuple[str, Decimal], ...]:
    return tuple((str(p["land_class"]), Decimal(str(p["area_mu"]))) for p in raw or [])


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresReportReads(ReportReads):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def _rows(self, row: Callable[..., RowT], query: str, *args: Any) -> list[RowT]:
        """The query's rows, each made a `row` of its columns by name."""
        return [row(**dict(record)) for record in await self.conn.fetch(query, *args)]

    async def department_tables(self, codes: Sequence[str]) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT code FROM unnest($1::text[]) WITH ORDINALITY AS c (code, position) "
            "WHERE to_regclass(quote_ident('dept_' || code) || '.blocks') IS NOT NULL "
            "AND to_regclass(quote_ident('dept_' || code) || '.cases') IS NOT NULL "
            "ORDER BY position",
            list(codes),
        )
        return [row["code"] for row in rows]

    async def clues(self, window: Window, township: str | None) -> list[ClueRow]:
        return await self._rows(
            ClueRow,
            "SELECT township, source, reported_on FROM clues "
            "WHERE reported_on BETWEEN $1 AND $2 AND ($3::text IS NULL OR township = $3)",
            window.first_day,
            window.last_day,
            township,
        )

    async def filed_cases(self, window: Window, township: str | None) -> list[FiledCaseRow]:
        rows = await self.conn.fetch(
            "SELECT case_id, township, filed_at, parcels FROM cases "
            "WHERE filed_at >= $1 AND filed_at < $2 AND ($3::text IS NULL OR township = $3)",
            window.start,
            window.end,
            township,
        )
        return [
            FiledCaseRow(row["case_id"], row["township"], row["filed_at"], _parcels(row["parcels"]))
            for row in rows
        ]

    async def accountability(self, window: Window, township: str | None) -> list[AccountabilityRow]:
        return await self._rows(
            AccountabilityRow,
            "SELECT case_id, township, accountability_started_at AS started_at FROM cases "
            "WHERE accountability_started_at >= $1 AND accountability_started_at < $2 "
            "AND ($3::text IS NULL OR township = $3)",
            window.start,
            window.end,
            township,
        )

    async def blocks(
        self, window: Window, township: str | None, departments: Sequence[str]
    ) -> list[BlockRow]:
        found: list[BlockRow] = []
        for code in departments:
            schema = _quoted(department_schema(code))
            rows = await self.conn.fetch(
                f"SELECT b.measure, b.case_id, c.township, b.applied_at, b.lifted_at "
                f"FROM {schema}.blocks b JOIN {schema}.cases c ON c.case_id = b.case_id "
                "WHERE ((b.applied_at >= $1 AND b.applied_at < $2) "
                "OR (b.lifted_at >= $1 AND b.lifted_at < $2)) "
                "AND ($3::text IS NULL OR c.township = $3)",
                window.start,
                window.end,
                township,
            )
            found.extend(BlockRow(department=code, **dict(row)) for row in rows)
        return found

    async def restorations(self, window: Window, township: str | None) -> list[RestorationRow]:
        return await self._rows(
            RestorationRow,
            "SELECT r.case_id, c.township, (r.data->>'verified_on')::date AS verified_on "
            "FROM case_records r JOIN cases c ON c.case_id = r.case_id "
            "WHERE r.step = 'restoration' "
            "AND (r.data->>'verified_on')::date BETWEEN $1 AND $2 "
            "AND ($3::text IS NULL OR c.township = $3)",
            window.first_day,
            window.last_day,
            township,
        )

    async def open_cases(self, as_of: datetime, township: str | None) -> list[OpenCaseRow]:
        return await self._rows(
            OpenCaseRow,
            "SELECT c.case_id, c.township, c.filed_at, e.ended_at FROM cases c "
            "LEFT JOIN LATERAL (SELECT min(r.recorded_at) AS ended_at FROM case_records r "
            "  WHERE r.case_id = c.case_id AND r.step = ANY($3::text[])) e ON true "
            "WHERE c.filed_at < $1 AND ($2::text IS NULL OR c.township = $2) "
            "AND (e.ended_at IS NULL OR e.ended_at >= $1)",
            as_of,
            township,
            sorted(ENDING_STEPS),
        )

    async def township_targets(self, quarter: str, township: str | None) -> list[TargetRow]:
        return await self._rows(
            TargetRow,
            "SELECT township, status, figures FROM township_quarter_reports "
            "WHERE quarter = $1 AND ($2::text IS NULL OR township = $2)",
            quarter,
            township,
        )

    async def township_talks(self, window: Window, township: str | None) -> list[TalkRow]:
        return await self._rows(
            TalkRow,
            "SELECT talk_id, township, status, reason, requested_at, talk_on, rectify_by, "
            "rectified_on FROM township_talks "
            "WHERE requested_at < $1 AND ($2::text IS NULL OR township = $2)",
            window.end,
            township,
        )

    async def responses(self, window: Window, department: str | None) -> list[ResponseRow]:
        return await self._rows(
            ResponseRow,
            "SELECT department, measure, case_id, action, required_at, due_at, done_at, "
            "failed_at FROM responses "
            "WHERE required_at >= $1 AND required_at < $2 AND due_at IS NOT NULL "
            "AND ($3::text IS NULL OR department = $3)",
            window.start,
            window.end,
            department,
        )

    async def satellite_cases(self, first_day: date, last_day: date) -> list[SatelliteCaseRow]:
        return await self._rows(
            SatelliteCaseRow,
            "SELECT c.case_id, c.township, c.found_on, c.basic_farmland_mu, c.cultivated_mu, "
            "EXISTS (SELECT 1 FROM case_records r WHERE r.case_id = c.case_id "
            "        AND r.step = 'revocation') AS revoked "
            "FROM cases c WHERE c.source = 'satellite' AND c.found_on BETWEEN $1 AND $2",
            first_day,
            last_day,
        )

    async def notice_cases(self, case_ids: Sequence[str]) -> list[NoticeSourceRow]:
        cases = await self.conn.fetch(
            "SELECT case_id, township, status, subject_kind, subject_id, subject_name, parcels, "
            "basic_farmland_mu, cultivated_mu, violation_kind, source, found_on, "
            "accountability_started_at IS NOT NULL AS accountability_started "
            "FROM cases WHERE case_id = ANY($1::text[])",
            list(case_ids),
        )
        records = await self.conn.fetch(
            "SELECT case_id, seq, step, data, recorded_at FROM case_records "
            "WHERE case_id = ANY($1::text[]) ORDER BY case_id, seq",
            list(case_ids),
        )
        by_case: dict[str, list[RecordRow]] = {}
        for record in records:
            by_case.setdefault(record["case_id"], []).append(
                RecordRow(record["seq"], record["step"], record["data"], record["recorded_at"])
            )
        return [
            NoticeSourceRow(
                **{**dict(row), "parcels": _parcels(row["parcels"])},
                records=tuple(by_case.get(row["case_id"], [])),
            )
            for row in cases
        ]

    async def decided_or_closed_since(self, since: date) -> list[str]:
        rows = await self.conn.fetch(
            "SELECT DISTINCT case_id FROM case_records "
            "WHERE (step = 'penalty' AND (data->>'decided_on')::date >= $1) "
            "OR (step = 'closure' AND (data->>'closed_on')::date >= $1) ORDER BY case_id",
            since,
        )
        return [row["case_id"] for row in rows]


class PostgresReportStore(ReportStore):
    """One connection per report: reports are rare, long reads, so no pool is kept open."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[ReportReads]:
        async with own_transaction(self.database_url, readonly=True) as conn:
            yield PostgresReportReads(conn)
