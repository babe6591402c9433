"""PostgreSQL storage for township accountability (migration 0010) and its read-only figures
from the registry's cases. One connection per command or view: these are rare, so no pool
is held open (the reports do the same)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from services.adapters.idempotency_keys import PostgresIdempotencyKeys
from services.adapters.postgres import TRANSIENT_ERRORS
from services.errors import DatabaseError
from services.reports.township import ENDING_STEPS
from services.townships.domain import (
    BusFigures,
    Notice,
    QuarterFigures,
    QuarterReport,
    ReportStatus,
    Talk,
    TalkStatus,
    Veto,
)
from services.townships.ports import (
    QuarterSpan,
    TownshipStore,
    TownshipTransaction,
)

_TALK_COLUMNS = (
    "talk_id, township, reason, cases, status, requested_by, requested_at, decided_by, "
    "decided_at, talk_on, rectify_by, decision_reason, rectified_on, rectification_summary, "
    "rectified_by"
)
_REPORT_COLUMNS = (
    "township, quarter, figures, status, entered_by, entered_at, submitted_by, submitted_at, "
    "received_by, received_at"
)


def _talk(row: asyncpg.Record) -> Talk:
    values = dict(row)
    values["cases"] = tuple(values["cases"])
    values["status"] = TalkStatus(values["status"])
    return Talk(**values)


def _report(row: asyncpg.Record) -> QuarterReport:
    values = dict(row)
    values["figures"] = QuarterFigures.model_validate(values["figures"])
    values["status"] = ReportStatus(values["status"])
    return QuarterReport(**values)


class PostgresTownshipTransaction(PostgresIdempotencyKeys, TownshipTransaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def next_talk_id(self, year: int) -> str:
        number = await self.conn.fetchval("SELECT nextval('township_talk_seq')")
        return f"WT-{year}-{number:06d}"

    async def talk(self, talk_id: str, *, for_update: bool = False) -> Talk | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(
            f"SELECT {_TALK_COLUMNS} FROM township_talks WHERE talk_id = $1{lock}", talk_id
        )
        return None if row is None else _talk(row)

    async def save_talk(self, talk: Talk) -> None:
        await self.conn.execute(
            f"INSERT INTO township_talks ({_TALK_COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
            "ON CONFLICT (talk_id) DO UPDATE SET status = EXCLUDED.status, "
            "decided_by = EXCLUDED.decided_by, decided_at = EXCLUDED.decided_at, "
            "talk_on = EXCLUDED.talk_on, rectify_by = EXCLUDED.rectify_by, "
            "decision_reason = EXCLUDED.decision_reason, rectified_on = EXCLUDED.rectified_on, "
            "rectification_summary = EXCLUDED.rectification_summary, "
            "rectified_by = EXCLUDED.rectified_by",
            talk.talk_id,
            talk.township,
            talk.reason,
            list(talk.cases),
            talk.status.value,
            talk.requested_by,
            talk.requested_at,
            talk.decided_by,
            talk.decided_at,
            talk.talk_on,
            talk.rectify_by,
            talk.decision_reason,
            talk.rectified_on,
            talk.rectification_summary,
            talk.rectified_by,
        )

    async def talks(
        self,
        township: str | None,
        first_day: date,
        last_day: date,
        start: datetime,
        end: datetime,
    ) -> list[Talk]:
        rows = await self.conn.fetch(
            f"SELECT {_TALK_COLUMNS} FROM township_talks "
            "WHERE ($1::text IS NULL OR township = $1) "
            "AND ((requested_at >= $4 AND requested_at < $5) "
            "     OR rectify_by BETWEEN $2 AND $3) ORDER BY talk_id",
            township,
            first_day,
            last_day,
            start,
            end,
        )
        return [_talk(row) for row in rows]

    async def next_notice_id(self, year: int) -> str:
        number = await self.conn.fetchval("SELECT nextval('township_notice_seq')")
        return f"TB-{year}-{number:06d}"

    async def add_notice(self, notice: Notice) -> None:
        await self.conn.execute(
            "INSERT INTO township_notices (notice_id, township, year, kind, text, recorded_by, "
            "recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            notice.notice_id,
            notice.township,
            notice.year,
            notice.kind,
            notice.text,
            notice.recorded_by,
            notice.recorded_at,
        )

    async def notices(self, year: int) -> list[Notice]:
        rows = await self.conn.fetch(
            "SELECT notice_id, township, year, kind, text, recorded_by, recorded_at "
            "FROM township_notices WHERE year = $1 ORDER BY notice_id",
            year,
        )
        return [Notice(**dict(row)) for row in rows]

    async def veto(self, township: str, year: int) -> Veto | None:
        """Locks the township's year first, so two vetoes at once cannot both be recorded."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 2))", f"{township}/{year}"
        )
        row = await self.conn.fetchrow(
            "SELECT township, year, reason, recorded_by, recorded_at FROM township_vetoes "
            "WHERE township = $1 AND year = $2",
            township,
            year,
        )
        return None if row is None else Veto(**dict(row))

    async def add_veto(self, veto: Veto) -> None:
        await self.conn.execute(
            "INSERT INTO township_vetoes (township, year, reason, recorded_by, recorded_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            veto.township,
            veto.year,
            veto.reason,
            veto.recorded_by,
            veto.recorded_at,
        )

    async def vetoes(self, year: int) -> list[Veto]:
        rows = await self.conn.fetch(
            "SELECT township, year, reason, recorded_by, recorded_at FROM township_vetoes "
            "WHERE year = $1",
            year,
        )
        return [Veto(**dict(row)) for row in rows]

    async def report(
        self, township: str, quarter: str, *, for_update: bool = False
    ) -> QuarterReport | None:
        if for_update:  # the first entry of a quarter has no row to lock yet
            await self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 1))", f"{township}/{quarter}"
            )
        row = await self.conn.fetchrow(
            f"SELECT {_REPORT_COLUMNS} FROM township_quarter_reports "
            "WHERE township = $1 AND quarter = $2",
            township,
            quarter,
        )
        return None if row is None else _report(row)

    async def save_report(self, report: QuarterReport) -> None:
        await self.conn.execute(
            f"INSERT INTO township_quarter_reports ({_REPORT_COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (township, quarter) DO UPDATE SET figures = EXCLUDED.figures, "
            "status = EXCLUDED.status, entered_by = EXCLUDED.entered_by, "
            "entered_at = EXCLUDED.entered_at, submitted_by = EXCLUDED.submitted_by, "
            "submitted_at = EXCLUDED.submitted_at, received_by = EXCLUDED.received_by, "
            "received_at = EXCLUDED.received_at",
            report.township,
            report.quarter,
            report.figures.model_dump(mode="json"),
            report.status.value,
            report.entered_by,
            report.entered_at,
            report.submitted_by,
            report.submitted_at,
            report.received_by,
            report.received_at,
        )

    async def reports(self, quarters: Sequence[str]) -> list[QuarterReport]:
        rows = await self.conn.fetch(
            f"SELECT {_REPORT_COLUMNS} FROM township_quarter_reports "
            "WHERE quarter = ANY($1::text[]) ORDER BY township, quarter",
            list(quarters),
        )
        return [_report(row) for row in rows]

    async def bus_figures(self, codes: Sequence[str], span: QuarterSpan) -> BusFigures:
        filed = await self.conn.fetchrow(
            "SELECT count(*) AS cases, coalesce(sum(cultivated_mu), 0) AS cultivated, "
            "coalesce(sum(basic_farmland_mu), 0) AS basic FROM cases c "
            "WHERE c.township = ANY($1::text[]) AND c.filed_at >= $2 AND c.filed_at < $3 "
            "AND NOT EXISTS (SELECT 1 FROM case_records r WHERE r.case_id = c.case_id "
            "                AND r.step = 'revocation')",
            list(codes),
            span.start,
            span.end,
        )
        restored = await self.conn.fetchval(
            "SELECT coalesce(sum(c.cultivated_mu), 0) FROM cases c WHERE "
            "c.township = ANY($1::text[]) AND EXISTS (SELECT 1 FROM case_records r "
            "WHERE r.case_id = c.case_id AND r.step = 'restoration' "
            "AND (r.data->>'verified_on')::date BETWEEN $2 AND $3)",
            list(codes),
            span.first_day,
            span.last_day,
        )
        still_open = await self.conn.fetchval(
            "SELECT count(*) FROM cases c WHERE c.township = ANY($1::text[]) "
            "AND c.filed_at < $2 AND NOT EXISTS (SELECT 1 FROM case_records r "
            "WHERE r.case_id = c.case_id AND r.step = ANY($3::text[]) AND r.recorded_at < $2)",
            list(codes),
            span.as_of,
            sorted(ENDING_STEPS),
        )
        return BusFigures(
            cases_filed=int(filed["cases"]),
            cultivated_occupied_mu=Decimal(filed["cultivated"]),
            basic_farmland_occupied_mu=Decimal(filed["basic"]),
            restored_mu=Decimal(restored),
            open_cases=int(still_open),
        )


class PostgresTownshipStore(TownshipStore):
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    @asynccontextmanager
    async def transaction(self, *, readonly: bool = False) -> AsyncIterator[TownshipTransaction]:
        try:
            conn = await asyncpg.connect(self.database_url)
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"cannot connect to the database: {exc}") from exc
        try:
            await conn.set_type_codec(
                "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
            isolation: Any = "repeatable_read" if readonly else "read_committed"
            async with conn.transaction(isolation=isolation, readonly=readonly):
                yield PostgresTownshipTransaction(conn)
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"database error: {exc}") from exc
        finally:
            await conn.close()
