"""PostgreSQL implementation of a department's store, in the department's own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.adapters.audit import append_audit
from services.adapters.outbox import enqueue
from services.adapters.postgres import TRANSIENT_ERRORS, connection
from services.audit.domain import AuditEntry
from services.departments.ports import (
    BatchWrites,
    Block,
    Consumed,
    DepartmentStore,
    DepartmentTransaction,
    KnownCase,
)
from services.errors import DatabaseError


def department_schema(code: str) -> str:
    return f"dept_{code}"


class PostgresDepartmentTransaction(DepartmentTransaction):
    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        rows = await self.conn.fetch(
            f"INSERT INTO {self.schema}.consumed_events (event_id, event_type) "
            "SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (event_id) DO NOTHING "
            "RETURNING event_id",
            [event.event_id for event in events],
            [event.event_type for event in events],
        )
        return {row["event_id"] for row in rows}

    # Both look-ups join the batch's case ids rather than test `case_id = ANY($1)`. With
    # the array test, about one backlog drain in three on a fresh schema slowed from
    # ~3,500 to ~1,000 events/s for a minute or more: Postgres spent most of a core on
    # these two queries until autovacuum's next ANALYZE (most likely a cached generic
    # plan made while the tables were small). With the join, 7 drains of 7 held their rate.
    async def known_cases(self, case_ids: Sequence[str]) -> dict[str, KnownCase]:
        rows = await self.conn.fetch(
            f"SELECT c.case_id, c.township, c.subject_kind, c.subject_id, c.subject_name "
            f"FROM unnest($1::text[]) AS wanted (case_id) "
            f"JOIN {self.schema}.cases AS c ON c.case_id = wanted.case_id",
            list(case_ids),
        )
        return {row["case_id"]: KnownCase(**dict(row)) for row in rows}

    async def active_blocks(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        rows = await self.conn.fetch(
            f"SELECT b.measure, b.case_id FROM unnest($1::text[]) AS wanted (case_id) "
            f"JOIN {self.schema}.blocks AS b ON b.case_id = wanted.case_id "
            "AND b.lifted_at IS NULL",
            list(case_ids),
        )
        return {(row["measure"], row["case_id"]) for row in rows}

    async def write(self, writes: BatchWrites) -> None:
        """One statement per table over arrays (unnest), not one per row: a backlog's
        batch of 2000 is then a few statements for the server, not 10,000."""
        s = self.schema
        if writes.cases:
            cases = [c.case for c in writes.cases]
            await self.conn.execute(
                f"INSERT INTO {s}.cases (case_id, township, subject_kind, subject_id, "
                "subject_name, filed_event) SELECT * FROM unnest($1::text[], $2::text[], "
                "$3::text[], $4::text[], $5::text[], $6::text[]) "
                "ON CONFLICT (case_id) DO NOTHING",
                [c.case_id for c in cases],
                [c.township for c in cases],
                [c.subject_kind for c in cases],
                [c.subject_id for c in cases],
                [c.subject_name for c in cases],
                [c.filed_event for c in writes.cases],
            )
        if writes.applied:
            applied = writes.applied
            await self.conn.execute(
                f"INSERT INTO {s}.blocks (measure, case_id, subject_kind, subject_id, "
                "subject_name, legal_basis, applied_at, applied_by) SELECT * FROM "
                "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
                "$6::text[], $7::timestamptz[], $8::text[]) "
                "ON CONFLICT (measure, case_id) DO NOTHING",
                [a.measure for a in applied],
                [a.case.case_id for a in applied],
                [a.case.subject_kind for a in applied],
                [a.case.subject_id for a in applied],
                [a.case.subject_name for a in applied],
                [a.legal_basis for a in applied],
                [a.at for a in applied],
                [a.event_id for a in applied],
            )
        if writes.lifted:
            await self.conn.executemany(
                f"UPDATE {s}.blocks SET lifted_at = $3, lift_reason = $4, lifted_by = $5 "
                "WHERE measure = $1 AND case_id = $2 AND lifted_at IS NULL",
                [(x.measure, x.case_id, x.at, x.reason, x.event_id) for x in writes.lifted],
            )
        await append_audit(self.conn, s, self._decisions(writes), datetime.now(UTC))
        if writes.outgoing:
            await enqueue(self.conn, s, writes.outgoing)

    def _decisions(self, writes: BatchWrites) -> list[AuditEntry]:
        """Every block applied or lifted, with the event that caused it and its basis."""
        department = self.schema.removeprefix("dept_")
        decisions = [
            AuditEntry(
                actor=department,
                action=f"apply {a.measure}",
                case_id=a.case.case_id,
                reason=f"caused by {a.event_id}",
                legal_basis=a.legal_basis,
                data={"measure": a.measure, "subject_kind": a.case.subject_kind},
            )
            for a in writes.applied
        ]
        decisions += [
            AuditEntry(
                actor=department,
                action=f"lift {x.measure}",
                case_id=x.case_id,
                reason=f"{x.reason}, caused by {x.event_id}",
                legal_basis="",
                data={"measure": x.measure},
            )
            for x in writes.lifted
        ]
        return decisions


class PostgresDepartmentStore(DepartmentStore):
    def __init__(self, pool: Any, code: str) -> None:
        self.pool = pool
        self.schema = department_schema(code)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DepartmentTransaction]:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield PostgresDepartmentTransaction(conn, self.schema)
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"database error: {exc}") from exc

    async def blocks(self, *, subject_id: str | None, active_only: bool) -> list[Block]:
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                f"SELECT measure, case_id, subject_kind, subject_id, subject_name, legal_basis, "
                f"applied_at, lifted_at, lift_reason FROM {self.schema}.blocks "
                "WHERE ($1::text IS NULL OR subject_id = $1) "
                "AND (NOT $2 OR lifted_at IS NULL) ORDER BY applied_at, case_id, measure",
                subject_id,
                active_only,
            )
        return [Block(**dict(row)) for row in rows]
