"""PostgreSQL implementation of the referral ports (table `referrals`, registry schema)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import fields
from typing import Any

import asyncpg

from services.adapters.case_records import append_case_record
from services.adapters.postgres import connection, placeholders
from services.audit.domain import AuditEntry
from services.referrals.domain import Referral, ReferralStatus
from services.referrals.ports import (
    ReferralFilter,
    ReferralReader,
    ReferralStep,
    ReferralTransaction,
)

_COLUMNS = (
    "referral_id, kind, case_id, township, sent_by, sent_by_officer, to_body, automatic, "
    "reason, file_summary, sent_at, answer_due_at, status, answered_at, answered_by, "
    "reference, refusal_reason, outcome_due_at, outcome, outcome_on, outcome_note, "
    "outcome_at, outcome_by"
)
_ALL = _COLUMNS.split(", ")
# An update writes the answer and the outcome, from the status on: never what was sent.
_UPDATED = _ALL[_ALL.index("status") :]
_INSERT = f"INSERT INTO referrals ({_COLUMNS}) VALUES ({placeholders(len(_ALL))})"
_UPDATE = (
    "UPDATE referrals SET "
    + ", ".join(f"{column} = ${n}" for n, column in enumerate(_UPDATED, start=2))
    + " WHERE referral_id = $1"
)


def _referral(row: asyncpg.Record) -> Referral:
    fields = dict(row)
    fields["to"] = fields.pop("to_body")
    fields["status"] = ReferralStatus(fields["status"])
    return Referral(**fields)


def _values(referral: Referral, columns: Sequence[str]) -> list[Any]:
    """The referral's values for these columns, as stored (`_referral` reads them back)."""
    stored = {field.name: getattr(referral, field.name) for field in fields(referral)}
    stored["to_body"] = stored.pop("to")
    stored["status"] = referral.status.value
    return [stored[column] for column in columns]


class PostgresReferralTransaction(ReferralTransaction):
    """On the registry transaction's connection; its audit entries join that
    transaction's, which the registry store chains just before the commit."""

    def __init__(self, conn: asyncpg.Connection, audit: list[AuditEntry]) -> None:
        self.conn = conn
        self.audit = audit

    async def next_referral_id(self, year: int) -> str:
        number = await self.conn.fetchval("SELECT nextval('referral_number_seq')")
        return f"R-{year}-{number:06d}"

    async def case_township(self, case_id: str) -> str | None:
        township: str | None = await self.conn.fetchval(
            "SELECT township FROM cases WHERE case_id = $1 FOR UPDATE", case_id
        )
        return township

    async def referrals_on(self, case_id: str) -> list[Referral]:
        rows = await self.conn.fetch(
            f"SELECT {_COLUMNS} FROM referrals WHERE case_id = $1 ORDER BY referral_id", case_id
        )
        return [_referral(row) for row in rows]

    async def insert(self, referral: Referral) -> None:
        await self.conn.execute(_INSERT, *_values(referral, _ALL))

    async def for_update(self, referral_id: str) -> Referral | None:
        row = await self.conn.fetchrow(
            f"SELECT {_COLUMNS} FROM referrals WHERE referral_id = $1 FOR UPDATE", referral_id
        )
        return None if row is None else _referral(row)

    async def update(self, referral: Referral) -> None:
        await self.conn.execute(_UPDATE, referral.referral_id, *_values(referral, _UPDATED))

    async def record(self, step: ReferralStep) -> None:
        case_id = step.referral.case_id
        if case_id is not None:
            await append_case_record(self.conn, case_id, step.step, step.case_record(), step.data)
        self.audit.append(step.audit())


class PostgresReferralReader(ReferralReader):
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def get(self, referral_id: str) -> Referral | None:
        async with self._read() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM referrals WHERE referral_id = $1", referral_id
            )
        return None if row is None else _referral(row)

    async def find(self, where: ReferralFilter) -> list[Referral]:
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM referrals "
                "WHERE ($1::text IS NULL OR to_body = $1) "
                "AND ($2::text IS NULL OR sent_by = $2) "
                "AND ($3::text IS NULL OR case_id = $3) "
                "AND ($4::text IS NULL OR status = $4) "
                "AND ($5::timestamptz IS NULL "
                "     OR (status = 'sent' AND answer_due_at < $5) "
                "     OR (status = 'accepted' AND outcome_due_at < $5)) "
                "AND ($6::text IS NULL OR case_id IS NOT NULL OR sent_by = $6) "
                "AND ($7::text IS NULL OR referral_id > $7) "
                "ORDER BY referral_id LIMIT $8",
                where.to,
                where.sent_by,
                where.case_id,
                where.status.value if where.status else None,
                where.overdue_at,
                where.on_cases_or_sent_by,
                where.after,
                where.limit,
            )
        return [_referral(row) for row in rows]

    def _read(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return connection(self.pool)
