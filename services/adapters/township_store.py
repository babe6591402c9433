"""PostgreSQL storage for township accountability (migration 0010) and its read-only figures
from the registry's cases. One connection per command or view: these are rare, so no pool
is held open (the reports do the same)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields
from decimal import Decimal
from enum import Enum
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.adapters.idempotency_keys import PostgresIdempotencyKeys
from services.adapters.postgres import own_transaction, placeholders
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
    DaySpan,
    QuarterSpan,
    TownshipStore,
    TownshipTransaction,
)

TownshipRecord = Talk | Notice | Veto | QuarterReport


# Each record is stored as it is held: a column for each field, of its name.
def _columns(record_type: type[TownshipRecord]) -> list[str]:
    return [field.name for field in fields(record_type)]


def _insert(
    table: str,
    record_type: type[TownshipRecord],
    *,
    replacing: tuple[str, ...] = (),
    keeping: tuple[str, ...] = (),
) -> str:
    """The insert of a record; with `replacing` (its key), one that replaces the key's row
    but for the columns `keeping`."""
    columns = _columns(record_type)
    insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders(len(columns))})"
    if not replacing:
        return insert
    updated = [c for c in columns if c not in (*replacing, *keeping)]
    return f"{insert} ON CONFLICT ({', '.join(replacing)}) DO UPDATE SET " + ", ".join(
        f"{column} = EXCLUDED.{column}" for column in updated
    )


def _stored(value: Any) -> Any:
    """A field as its column holds it: a state by value, a tuple as an array, figures as JSON."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def _values(record: TownshipRecord) -> list[Any]:
    return [_stored(getattr(record, field.name)) for field in fields(record)]


_TALK_COLUMNS = ", ".join(_columns(Talk))
_NOTICE_COLUMNS = ", ".join(_columns(Notice))
_VETO_COLUMNS = ", ".join(_columns(Veto))
_REPORT_COLUMNS = ", ".join(_columns(QuarterReport))
# A talk saved again keeps who asked for it, when and why; a report is replaced whole.
_SAVE_TALK = _insert(
    "township_talks",
    Talk,
    replacing=("talk_id",),
    keeping=("township", "reason", "cases", "requested_by", "requested_at"),
)
_SAVE_REPORT = _insert("township_quarter_reports", QuarterReport, replacing=("township", "quarter"))
_ADD_NOTICE = _insert("township_notices", Notice)
_ADD_VETO = _insert("township_vetoes", Veto)


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
        await self.conn.execute(_SAVE_TALK, *_values(talk))

    async def talks(self, township: str | None, span: DaySpan) -> list[Talk]:
        rows = await self.conn.fetch(
            f"SELECT {_TALK_COLUMNS} FROM township_talks "
            "WHERE ($1::text IS NULL OR township = $1) "
            "AND ((requested_at >= $4 AND requested_at < $5) "
            "     OR rectify_by BETWEEN $2 AND $3) ORDER BY talk_id",
            township,
            span.first_day,
            span.last_day,
            span.start,
            span.end,
        )
        return [_talk(row) for row in rows]

    async def next_notice_id(self, year: int) -> str:
        number = await self.conn.fetchval("SELECT nextval('township_notice_seq')")
        return f"TB-{year}-{number:06d}"

    async def add_notice(self, notice: Notice) -> None:
        await self.conn.execute(_ADD_NOTICE, *_values(notice))

    async def notices(self, year: int) -> list[Notice]:
        rows = await self.conn.fetch(
            f"SELECT {_NOTICE_COLUMNS} FROM township_notices WHERE year = $1 ORDER BY notice_id",
            year,
        )
        return [Notice(**dict(row)) for row in rows]

    async def veto(self, township: str, year: int) -> Veto | None:
        """Locks the township's year first, so two vetoes at once cannot both be recorded."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 2))", f"{township}/{year}"
        )
        row = await self.conn.fetchrow(
            f"SELECT {_VETO_COLUMNS} FROM township_vetoes WHERE township = $1 AND year = $2",
            township,
            year,
        )
        return None if row is None else Veto(**dict(row))

    async def add_veto(self, veto: Veto) -> None:
        await self.conn.execute(_ADD_VETO, *_values(veto))

    async def vetoes(self, year: int) -> list[Veto]:
        rows = await self.conn.fetch(
            f"SELECT {_VETO_COLUMNS} FROM township_vetoes WHERE year = $1", year
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
        await self.conn.execute(_SAVE_REPORT, *_values(report))

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
        async with own_transaction(self.database_url, readonly=readonly) as conn:
            yield PostgresTownshipTransaction(conn)
