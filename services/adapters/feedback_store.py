"""PostgreSQL implementation of the feedback tracker's store (table responses)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from services.adapters.outbox import enqueue
from services.adapters.postgres import TRANSIENT_ERRORS
from services.errors import DatabaseError
from services.feedback.domain import Requirement
from services.feedback.handlers import CONSUMER
from services.feedback.ports import FeedbackStore, FeedbackTransaction, Response, Waiting
from services.outbox.ports import OutgoingEvent

_REQUIRE = (
    "INSERT INTO responses (case_id, department, measure, action, required_at, due_at, "
    "required_by) {source} "
    "ON CONFLICT (case_id, department, measure, action) DO UPDATE SET "
    "required_at = coalesce(responses.required_at, excluded.required_at), "
    "due_at = coalesce(responses.due_at, excluded.due_at), "
    "required_by = coalesce(responses.required_by, excluded.required_by)"
)
_REQUIRE_APPLY = _REQUIRE.format(source="VALUES ($1, $2, $3, 'apply', $4, $5, $6)")
# A lift is owed only where the apply was owed: a measure never applied has nothing to lift.
_REQUIRE_LIFT = _REQUIRE.format(
    source="SELECT $1, $2, $3, 'lift', $4, $5, $6 WHERE EXISTS (SELECT 1 FROM responses "
    "WHERE case_id = $1 AND department = $2 AND measure = $3 AND action = 'apply')"
)


class PostgresFeedbackTransaction(FeedbackTransaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def consumed_among(self, event_ids: Sequence[str]) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT event_id FROM consumed_events "
            "WHERE consumer = $1 AND event_id = ANY($2::text[])",
            CONSUMER,
            list(event_ids),
        )
        return {row["event_id"] for row in rows}

    async def record(
        self,
        *,
        required: Sequence[Requirement],
        responses: Sequence[Response],
        consumed: Sequence[tuple[str, str]],
        outgoing: Sequence[OutgoingEvent],
    ) -> None:
        for action, statement in (("apply", _REQUIRE_APPLY), ("lift", _REQUIRE_LIFT)):
            rows = [
                (r.case_id, r.department, r.measure, r.required_at, r.due_at, r.required_by)
                for r in required
                if r.action == action
            ]
            if rows:
                await self.conn.executemany(statement, rows)
        done = [r for r in responses if r.error is None]
        failed = [r for r in responses if r.error is not None]
        if done:
            await self.conn.executemany(
                "INSERT INTO responses (case_id, department, measure, action, done_at, done_by, "
                "reference) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT (case_id, department, measure, action) DO UPDATE SET "
                "done_at = coalesce(responses.done_at, excluded.done_at), "
                "done_by = coalesce(responses.done_by, excluded.done_by), "
                "reference = coalesce(responses.reference, excluded.reference)",
                [
                    (r.case_id, r.department, r.measure, r.action, r.at, r.event_id, r.reference)
                    for r in done
                ],
            )
        if failed:
            await self.conn.executemany(
                "INSERT INTO responses (case_id, department, measure, action, failed_at, error) "
                "VALUES ($1, $2, $3, $4, $5, $6) "
                "ON CONFLICT (case_id, department, measure, action) DO UPDATE SET "
                "failed_at = excluded.failed_at, error = excluded.error",
                [(r.case_id, r.department, r.measure, r.action, r.at, r.error) for r in failed],
            )
        if consumed:
            await self.conn.executemany(
                "INSERT INTO consumed_events (consumer, event_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING",
                [(CONSUMER, event_id) for event_id, _ in consumed],
            )
        if outgoing:
            await enqueue(self.conn, "public", outgoing)

    async def claim_overdue(self, now: datetime, limit: int) -> list[Waiting]:
        rows = await self.conn.fetch(
            "UPDATE responses SET overdue_at = $1 WHERE (case_id, department, measure, action) IN "
            "(SELECT case_id, department, measure, action FROM responses "
            " WHERE done_at IS NULL AND overdue_at IS NULL AND due_at < $1 "
            " ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "RETURNING case_id, department, measure, action, required_at, due_at",
            now,
            limit,
        )
        return [Waiting(**dict(row)) for row in rows]

    async def enqueue(self, events: Sequence[OutgoingEvent]) -> None:
        if events:
            await enqueue(self.conn, "public", events)


class PostgresFeedbackStore(FeedbackStore):
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FeedbackTransaction]:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                yield PostgresFeedbackTransaction(conn)
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"database error: {exc}") from exc
