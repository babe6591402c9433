"""PostgreSQL implementation of the feedback tracker's store (table responses), whose
notices and dead letters go to the tracker's own outbox (schema `feedback`), relayed under
the tracker's identity: the registry's relay may write only the violation stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from services.adapters.outbox import enqueue
from services.adapters.postgres import claim_shared, pooled_transaction
from services.consumer import Consumed
from services.feedback.domain import in_order
from services.feedback.handlers import CONSUMER
from services.feedback.ports import (
    FeedbackStore,
    FeedbackTransaction,
    FeedbackWrites,
    Response,
    Waiting,
)
from services.outbox.ports import OutgoingEvent

SCHEMA = "feedback"
MIGRATIONS = "services.feedback.migrations"

# Whether the answer a row holds stays when its requirement is written: an answer that
# came before any requirement, or one to this very requirement (it was read first).
_KEPT = "(r.required_by IS NULL OR r.answers = excluded.required_by)"
_RENEW = (
    "required_at = excluded.required_at, due_at = excluded.due_at, "
    "required_by = excluded.required_by, required_seq = excluded.required_seq, "
    + ", ".join(
        f"{column} = CASE WHEN {_KEPT} THEN r.{column} END"
        for column in ("done_at", "done_by", "reference", "answers", "failed_at", "error")
    )
    + ", overdue_at = NULL"
)
_LIFTED_SINCE = (
    "EXISTS (SELECT 1 FROM responses AS l WHERE l.case_id = {apply}.case_id "
    "AND l.department = {apply}.department AND l.measure = {apply}.measure "
    "AND l.action = 'lift' AND l.required_seq > {apply}.required_seq)"
)
# Each statement writes a wave of rows with distinct keys, passed as arrays (one
# statement a wave instead of one a row: the tracker's rows were its backend's main
# cost, #19); a key that repeats goes to a later wave, so each sees the one before.
_REQUIRED_ROWS = (
    "unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], "
    "$6::text[]) WITH ORDINALITY AS t(case_id, department, measure, required_at, due_at, "
    "required_by, n)"
)
# An apply is owed anew unless it is owed already and not lifted since (a measure in
# force is not applied twice, so it is not answered twice either).
_REQUIRE_APPLY = (
    "INSERT INTO responses AS r (case_id, department, measure, action, required_at, due_at, "
    "required_by, required_seq) "
    "SELECT t.case_id, t.department, t.measure, 'apply', t.required_at, t.due_at, "
    f"t.required_by, nextval('response_requirement_seq') FROM {_REQUIRED_ROWS} ORDER BY t.n "
    f"ON CONFLICT (case_id, department, measure, action) DO UPDATE SET {_RENEW} "
    "WHERE r.required_seq IS NULL OR " + _LIFTED_SINCE.format(apply="r")
)
# A lift is owed only where this department was owed the apply and has not been asked to
# lift it since: a measure never applied, or lifted already, has nothing to lift.
_REQUIRE_LIFT = (
    "INSERT INTO responses AS r (case_id, department, measure, action, required_at, due_at, "
    "required_by, required_seq) "
    "SELECT a.case_id, a.department, a.measure, 'lift', t.required_at, t.due_at, "
    f"t.required_by, nextval('response_requirement_seq') FROM {_REQUIRED_ROWS} "
    "JOIN responses AS a ON a.case_id = t.case_id AND a.department = t.department "
    "AND a.measure = t.measure AND a.action = 'apply' "
    "WHERE a.required_seq IS NOT NULL AND NOT " + _LIFTED_SINCE.format(apply="a") + " "
    f"ORDER BY t.n ON CONFLICT (case_id, department, measure, action) DO UPDATE SET {_RENEW}"
)
# An answer counts for the requirement it answers, or for one not read yet (the two
# topics are read out of step); one answering a requirement since replaced is stale.
_ANSWER_COUNTS = (
    "(r.required_by IS NULL OR r.required_by = excluded.answers OR NOT EXISTS "
    "(SELECT 1 FROM consumed_events AS c WHERE c.consumer = $1 AND c.event_id = excluded.answers))"
)
_ANSWER = (
    "INSERT INTO responses AS r (case_id, department, measure, action, done_at, done_by, "
    "reference, answers) SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], "
    "$6::timestamptz[], $7::text[], $8::text[], $9::text[]) "
    "ON CONFLICT (case_id, department, measure, action) DO UPDATE SET "
    "done_at = excluded.done_at, done_by = excluded.done_by, "
    "reference = excluded.reference, answers = excluded.answers "
    "WHERE (r.done_at IS NULL OR r.answers IS DISTINCT FROM excluded.answers) "
    f"AND {_ANSWER_COUNTS}"
)
_FAILED = (
    "INSERT INTO responses AS r (case_id, department, measure, action, failed_at, error, "
    "answers) SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], "
    "$6::timestamptz[], $7::text[], $8::text[]) "
    "ON CONFLICT (case_id, department, measure, action) DO UPDATE SET "
    "failed_at = excluded.failed_at, error = excluded.error, answers = excluded.answers, "
    "done_at = CASE WHEN r.answers = excluded.answers THEN r.done_at END "
    f"WHERE {_ANSWER_COUNTS}"
)
_STATEMENTS = {"apply": _REQUIRE_APPLY, "lift": _REQUIRE_LIFT}


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as the column arrays a statement unnests."""
    return [list(column) for column in zip(*rows, strict=True)]


def _waves(rows: Sequence[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Rows in waves of distinct keys (their first four values), each key's in order: an
    upsert cannot touch one row twice."""
    waves: list[list[tuple[Any, ...]]] = []
    seen: dict[tuple[Any, ...], int] = {}  # key -> how many of its rows are placed
    for row in rows:
        wave = seen.get(row[:4], 0)
        seen[row[:4]] = wave + 1
        while len(waves) <= wave:
            waves.append([])
        waves[wave].append(row)
    return waves


def _key(response: Response) -> tuple[str, str, str, str]:
    """The responses row an answer goes to."""
    return (response.case_id, response.department, response.measure, response.action)


class PostgresFeedbackTransaction(FeedbackTransaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        return await claim_shared(self.conn, CONSUMER, events)

    async def record(self, writes: FeedbackWrites) -> None:
        for wave in in_order(writes.required):
            for action, statement in _STATEMENTS.items():
                rows = [
                    (r.case_id, r.department, r.measure, r.required_at, r.due_at, r.required_by)
                    for r in wave
                    if r.action == action
                ]
                if rows:
                    await self.conn.execute(statement, *_columns(rows))
        await self._record_responses(writes.responses)
        await enqueue(self.conn, SCHEMA, writes.outgoing)

    async def _record_responses(self, responses: Sequence[Response]) -> None:
        """Each department's answer: done, or failed with its error."""
        done = [
            (*_key(r), r.at, r.event_id, r.reference, r.answers)
            for r in responses
            if r.error is None
        ]
        failed = [(*_key(r), r.at, r.error, r.answers) for r in responses if r.error is not None]
        for statement, rows in ((_ANSWER, done), (_FAILED, failed)):
            for wave in _waves(rows):
                await self.conn.execute(statement, CONSUMER, *_columns(wave))

    async def claim_overdue(self, now: datetime, limit: int) -> list[Waiting]:
        rows = await self.conn.fetch(
            "UPDATE responses SET overdue_at = $1 WHERE (case_id, department, measure, action) IN "
            "(SELECT case_id, department, measure, action FROM responses "
            " WHERE done_at IS NULL AND overdue_at IS NULL AND due_at < $1 "
            " ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "RETURNING case_id, department, measure, action, required_at, due_at, required_by",
            now,
            limit,
        )
        return [Waiting(**dict(row)) for row in rows]

    async def enqueue(self, events: Sequence[OutgoingEvent]) -> None:
        await enqueue(self.conn, SCHEMA, events)


class PostgresFeedbackStore(FeedbackStore):
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FeedbackTransaction]:
        async with pooled_transaction(self.pool) as conn:
            yield PostgresFeedbackTransaction(conn)
