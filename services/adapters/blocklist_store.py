"""PostgreSQL implementation of the blocklist builder's store (schema `blocklist`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from services.adapters.outbox import enqueue
from services.adapters.postgres import TRANSIENT_ERRORS, connection
from services.blocklist.domain import ActiveBlock, ListedSubject
from services.blocklist.ports import BlocklistStore, BlocklistTransaction, ListWrites
from services.errors import DatabaseError
from services.outbox.ports import OutgoingEvent

SCHEMA = "blocklist"
MIGRATIONS = "services.blocklist.migrations"

_ACTIVE = (
    "SELECT b.measure, b.department, b.case_id, b.legal_basis, b.since, "
    "c.subject_hash, c.subject_kind, c.masked_name "
    f"FROM {SCHEMA}.blocks b JOIN {SCHEMA}.cases c USING (case_id) "
    "WHERE b.lifted_at IS NULL "
)


def _active_block(row: asyncpg.Record) -> ActiveBlock:
    return ActiveBlock(
        measure=row["measure"],
        department=row["department"],
        case_id=row["case_id"],
        legal_basis=row["legal_basis"],
        since=row["since"],
        subject=ListedSubject(
            row["case_id"], row["subject_hash"], row["subject_kind"], row["masked_name"]
        ),
    )


class PostgresBlocklistTransaction(BlocklistTransaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def consumed_among(self, event_ids: Sequence[str]) -> set[str]:
        rows = await self.conn.fetch(
            f"SELECT event_id FROM {SCHEMA}.consumed_events WHERE event_id = ANY($1::text[])",
            list(event_ids),
        )
        return {row["event_id"] for row in rows}

    async def subjects(self, case_ids: Sequence[str]) -> dict[str, ListedSubject]:
        rows = await self.conn.fetch(
            f"SELECT case_id, subject_hash, subject_kind, masked_name FROM {SCHEMA}.cases "
            "WHERE case_id = ANY($1::text[])",
            list(case_ids),
        )
        return {row["case_id"]: ListedSubject(**dict(row)) for row in rows}

    async def active_on(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        rows = await self.conn.fetch(
            f"SELECT measure, case_id FROM {SCHEMA}.blocks "
            "WHERE case_id = ANY($1::text[]) AND lifted_at IS NULL",
            list(case_ids),
        )
        return {(row["measure"], row["case_id"]) for row in rows}

    async def write(self, writes: ListWrites) -> None:
        if writes.subjects:
            await self.conn.executemany(
                f"INSERT INTO {SCHEMA}.cases (case_id, subject_hash, subject_kind, masked_name, "
                "filed_event) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id) DO NOTHING",
                [
                    (s.case_id, s.subject_hash, s.subject_kind, s.masked_name, event_id)
                    for s, event_id in writes.subjects
                ],
            )
        if writes.applied:
            await self.conn.executemany(
                f"INSERT INTO {SCHEMA}.blocks (measure, case_id, subject_hash, department, "
                "legal_basis, since, applied_by) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT (measure, case_id) DO NOTHING",
                [
                    (
                        a.measure,
                        a.subject.case_id,
                        a.subject.subject_hash,
                        a.department,
                        a.legal_basis,
                        a.since,
                        a.event_id,
                    )
                    for a in writes.applied
                ],
            )
        if writes.lifted:
            await self.conn.executemany(
                f"UPDATE {SCHEMA}.blocks SET lifted_at = $3, lifted_by = $4 "
                "WHERE measure = $1 AND case_id = $2 AND lifted_at IS NULL",
                [(x.measure, x.case_id, x.at, x.event_id) for x in writes.lifted],
            )
        if writes.consumed:
            await self.conn.executemany(
                f"INSERT INTO {SCHEMA}.consumed_events (event_id, event_type) VALUES ($1, $2) "
                "ON CONFLICT (event_id) DO NOTHING",
                writes.consumed,
            )

    async def listed(self, keys: Sequence[tuple[str, str]]) -> list[ActiveBlock]:
        if not keys:
            return []
        rows = await self.conn.fetch(
            _ACTIVE + "AND (b.measure, b.subject_hash) IN "
            "(SELECT * FROM unnest($1::text[], $2::text[]))",
            [measure for measure, _ in keys],
            [subject_hash for _, subject_hash in keys],
        )
        return [_active_block(row) for row in rows]

    async def enqueue(self, outgoing: Sequence[OutgoingEvent]) -> None:
        if outgoing:
            await enqueue(self.conn, SCHEMA, outgoing)


class PostgresBlocklistStore(BlocklistStore):
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[BlocklistTransaction]:
        """One batch at a time across every builder: a second builder (a rolling update)
        waits here, and then reads the entries the first one wrote."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended('redline-blocklist-builder', 0))"
                )
                yield PostgresBlocklistTransaction(conn)
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"database error: {exc}") from exc

    async def claim_subject_key(self, key_id: str) -> str:
        """Record the subject key on first use; returns the key the lists are built under."""
        async with connection(self.pool) as conn:
            recorded: str = await conn.fetchval(
                f"WITH mine AS (INSERT INTO {SCHEMA}.subject_key (key_id) VALUES ($1) "
                "ON CONFLICT (singleton) DO NOTHING RETURNING key_id) "
                f"SELECT key_id FROM mine UNION ALL SELECT key_id FROM {SCHEMA}.subject_key",
                key_id,
            )
        return recorded

    async def active(self, measure: str, subject_hash: str) -> list[ActiveBlock]:
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                _ACTIVE + "AND b.measure = $1 AND b.subject_hash = $2 ORDER BY b.since",
                measure,
                subject_hash,
            )
        return [_active_block(row) for row in rows]
