"""PostgreSQL implementation of the registry's storage ports (cases, outbox, idempotency)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from services.adapters.audit import append_audit
from services.adapters.case_records import append_case_record
from services.adapters.idempotency_keys import PostgresIdempotencyKeys
from services.adapters.outbox import PostgresOutbox, enqueue
from services.adapters.postgres import connection, pooled_transaction
from services.adapters.referral_store import PostgresReferralTransaction
from services.audit.domain import AuditEntry
from services.feedback.status import ResponseRow
from services.outbox.ports import OutgoingEvent
from services.registry.domain import SIGN_OFF_BASIS, CaseStatus, SigningBody, SignOff
from services.registry.ports import (
    CaseRecord,
    CaseRow,
    RegistryStore,
    RegistryTransaction,
    record_audit,
    sign_off_data,
    voided_audit,
)

_CASE_COLUMNS = (
    "case_id, township, status, subject_kind, subject_id, subject_name, parcels, "
    "basic_farmland_mu, cultivated_mu, violation_kind, source, found_on, clue_id, "
    "accountability_started_at, facts, filed_at, updated_at"
)


def _case(row: asyncpg.Record) -> CaseRow:
    return CaseRow(
        case_id=row["case_id"],
        township=row["township"],
        status=CaseStatus(row["status"]),
        subject={"kind": row["subject_kind"], "id": row["subject_id"], "name": row["subject_name"]},
        parcels=row["parcels"],
        basic_farmland_mu=row["basic_farmland_mu"],
        cultivated_mu=row["cultivated_mu"],
        violation_kind=row["violation_kind"],
        source=row["source"],
        found_on=row["found_on"],
        clue_id=row["clue_id"],
        accountability_started_at=row["accountability_started_at"],
        facts=row["facts"],
        filed_at=row["filed_at"],
        updated_at=row["updated_at"],
    )


class PostgresTransaction(PostgresIdempotencyKeys, RegistryTransaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.audit: list[AuditEntry] = []  # chained by the store just before the commit

    async def next_case_id(self, year: int) -> str:
        number = await self.conn.fetchval("SELECT nextval('case_number_seq')")
        return f"RL-{year}-{number:06d}"

    async def next_clue_id(self, day: date) -> str:
        number = await self.conn.fetchval("SELECT nextval('clue_number_seq')")
        return f"CL-{day:%Y%m%d}-{number:06d}"

    async def insert_clue(self, clue: dict[str, Any]) -> None:
        await self.conn.execute(
            "INSERT INTO clues (clue_id, source, township, location, description, reported_on, "
            "reported_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            clue["clue_id"],
            clue["source"],
            clue["township"],
            clue["location"],
            clue["description"],
            clue["reported_on"],
            clue.get("reported_by"),
        )

    async def take_clue(self, clue_id: str, case_id: str) -> bool:
        taken = await self.conn.fetchval(
            "UPDATE clues SET case_id = $2 WHERE clue_id = $1 AND case_id IS NULL "
            "RETURNING clue_id",
            clue_id,
            case_id,
        )
        return taken is not None

    async def insert_case(self, case: CaseRow) -> None:
        await self.conn.execute(
            "INSERT INTO cases (case_id, township, status, subject_kind, subject_id, "
            "subject_name, parcels, basic_farmland_mu, cultivated_mu, violation_kind, source, "
            "found_on, clue_id, accountability_started_at, facts) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            case.case_id,
            case.township,
            case.status.value,
            case.subject["kind"],
            case.subject["id"],
            case.subject["name"],
            case.parcels,
            case.basic_farmland_mu,
            case.cultivated_mu,
            case.violation_kind,
            case.source,
            case.found_on,
            case.clue_id,
            case.accountability_started_at,
            case.facts,
        )

    async def case_for_update(self, case_id: str) -> CaseRow | None:
        row = await self.conn.fetchrow(
            f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = $1 FOR UPDATE", case_id
        )
        return None if row is None else _case(row)

    async def update_case(self, case: CaseRow) -> None:
        await self.conn.execute(
            "UPDATE cases SET status = $2, parcels = $3, basic_farmland_mu = $4, "
            "cultivated_mu = $5, accountability_started_at = $6, facts = $7, updated_at = now() "
            "WHERE case_id = $1",
            case.case_id,
            case.status.value,
            case.parcels,
            case.basic_farmland_mu,
            case.cultivated_mu,
            case.accountability_started_at,
            case.facts,
        )

    async def append_record(
        self, case_id: str, step: str, event: OutgoingEvent, data: dict[str, Any]
    ) -> None:
        await append_case_record(self.conn, case_id, step, (event.event_id, event.event_type), data)
        self.audit.append(record_audit(case_id, step, event, data))

    async def enqueue(self, event: OutgoingEvent) -> None:
        await enqueue(self.conn, "public", [event])

    async def restoration_sign_offs(self, case_id: str) -> list[SignOff]:
        return await _sign_offs(self.conn, case_id)

    async def add_sign_off(self, case_id: str, sign_off: SignOff) -> None:
        replaced = await self.conn.fetchrow(
            "SELECT officer, verified_on FROM restoration_sign_offs "
            "WHERE case_id = $1 AND body = $2",
            case_id,
            sign_off.body.value,
        )
        await self.conn.execute(
            "INSERT INTO restoration_sign_offs (case_id, body, officer, verified_on) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (case_id, body) DO UPDATE SET "
            "officer = excluded.officer, verified_on = excluded.verified_on, signed_at = now()",
            case_id,
            sign_off.body.value,
            sign_off.officer,
            sign_off.verified_on,
        )
        reason = f"signed by {sign_off.officer}, verified on {sign_off.verified_on}"
        data: dict[str, Any] = sign_off_data(sign_off)
        if replaced is not None:  # the body corrected its own date: the earlier one is kept here
            reason += (
                f"; replaces the sign-off by {replaced['officer']}, "
                f"verified on {replaced['verified_on']}"
            )
            data["replaces"] = {
                "officer": replaced["officer"],
                "verified_on": replaced["verified_on"].isoformat(),
            }
        entry = AuditEntry(
            actor=sign_off.body.value,
            action="restoration sign-off",
            case_id=case_id,
            reason=reason,
            legal_basis=SIGN_OFF_BASIS[sign_off.body],
            data=data,
        )
        self.audit.append(entry)

    async def void_sign_offs(self, case_id: str, reason: str) -> list[SignOff]:
        rows = await self.conn.fetch(
            "DELETE FROM restoration_sign_offs WHERE case_id = $1 "
            "RETURNING body, officer, verified_on",
            case_id,
        )
        voided = [SignOff(SigningBody(r["body"]), r["officer"], r["verified_on"]) for r in rows]
        self.audit.extend(voided_audit(case_id, sign_off, reason) for sign_off in voided)
        return voided

    async def rectified_on(self, case_id: str) -> date | None:
        found: date | None = await self.conn.fetchval(
            "SELECT max((data->>'completed_on')::date) FROM case_records "
            "WHERE case_id = $1 AND step = 'rectification'",
            case_id,
        )
        return found

    def referrals(self) -> PostgresReferralTransaction:
        return PostgresReferralTransaction(self.conn, self.audit)


async def _sign_offs(conn: asyncpg.Connection, case_id: str) -> list[SignOff]:
    rows = await conn.fetch(
        "SELECT body, officer, verified_on FROM restoration_sign_offs WHERE case_id = $1 "
        "ORDER BY signed_at, body",
        case_id,
    )
    return [SignOff(SigningBody(row["body"]), row["officer"], row["verified_on"]) for row in rows]


class PostgresRegistryStore(RegistryStore):
    def __init__(self, pool: Any, database_url: str) -> None:
        self.pool = pool
        self.outbox = PostgresOutbox(pool, database_url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RegistryTransaction]:
        async with pooled_transaction(self.pool) as conn:
            tx = PostgresTransaction(conn)
            yield tx
            # Last before the commit: the audit chain's lock serialises every filing from
            # here on, so it is held for the append and the commit only, not for the
            # statements and the API's turns in between.
            await append_audit(conn, "public", tx.audit, datetime.now(UTC))

    async def get_case(self, case_id: str) -> tuple[CaseRow, list[CaseRecord]] | None:
        async with self._read() as conn:
            row = await conn.fetchrow(
                f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_id = $1", case_id
            )
            if row is None:
                return None
            records = await conn.fetch(
                "SELECT seq, step, event_id, event_type, data, recorded_at FROM case_records "
                "WHERE case_id = $1 ORDER BY seq",
                case_id,
            )
        return _case(row), [CaseRecord(**dict(record)) for record in records]

    async def responses(self, case_id: str) -> list[ResponseRow]:
        async with self._read() as conn:
            rows = await conn.fetch(
                "SELECT case_id, department, measure, action, required_at, due_at, done_at, "
                "reference, failed_at, error, overdue_at FROM responses WHERE case_id = $1 "
                "ORDER BY department, measure, action",
                case_id,
            )
        return [ResponseRow(**dict(row)) for row in rows]

    async def restoration_sign_offs(self, case_id: str) -> list[SignOff]:
        async with self._read() as conn:
            return await _sign_offs(conn, case_id)

    async def list_cases(
        self, *, township: str | None, status: CaseStatus | None, after: str | None, limit: int
    ) -> list[CaseRow]:
        async with self._read() as conn:
            rows = await conn.fetch(
                f"SELECT {_CASE_COLUMNS} FROM cases "
                "WHERE ($1::text IS NULL OR township = $1) AND ($2::text IS NULL OR status = $2) "
                "AND ($3::text IS NULL OR case_id > $3) ORDER BY case_id LIMIT $4",
                township,
                status.value if status else None,
                after,
                limit,
            )
        return [_case(row) for row in rows]

    def _read(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return connection(self.pool)
