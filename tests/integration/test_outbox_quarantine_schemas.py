"""Every outbox can quarantine (#18): the registry's, a department's and the builder's.
A quarantined row is kept, skipped by the relay's read, and back in place once released."""

from __future__ import annotations

import asyncpg
import pytest

from services.adapters.migrate import migrate
from services.adapters.outbox import PostgresOutbox, enqueue
from services.outbox.ports import OutgoingEvent
from tests.conftest import Stack, create_database

OUTBOXES = [
    ("public", "services.migrations"),
    ("dept_quarantine", "services.departments.migrations"),
    ("blocklist", "services.blocklist.migrations"),
]


@pytest.mark.parametrize(("schema", "package"), OUTBOXES)
async def test_an_outbox_sets_a_row_aside_and_releases_it_in_place(
    stack: Stack, schema: str, package: str
) -> None:
    database = await create_database(stack, migrated=False)
    await migrate(database, package=package, schema=schema)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    outbox = PostgresOutbox(pool, database, schema=schema, channel=f"{schema}.outbox")
    try:
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(
                conn,
                schema,
                [OutgoingEvent(f"e{n}", "redline.test.v1", "t", "k", b"v") for n in (1, 2, 3)],
            )
        first, second, third = [e.position for e in await outbox.pending(10)]

        assert await outbox.quarantine([second], "TopicAuthorizationFailedError: no") == 1
        assert await outbox.quarantine([second], "again") == 0  # already aside
        assert [e.position for e in await outbox.pending(10)] == [first, third]
        assert await outbox.quarantined() == 1
        await outbox.mark_sent([first, third])
        assert not await outbox.has_pending()  # a quarantined row is not a backlog
        assert await outbox.replay_from(position=None, since=None) == 2  # nor replayed

        await outbox.mark_sent([first, third])
        assert await outbox.release() == 1
        assert [e.position for e in await outbox.pending(10)] == [second]
        assert await outbox.quarantined() == 0
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT sent_at, quarantine_reason FROM {schema}.outbox WHERE position = $1",
                second,
            )
            plan = " ".join(
                row[0]
                for row in await conn.fetch(
                    f"EXPLAIN SELECT position FROM {schema}.outbox WHERE sent_at IS NULL "
                    "AND quarantined_at IS NULL ORDER BY position LIMIT 10"
                )
            )
        assert row["sent_at"] is None
        assert row["quarantine_reason"] == "TopicAuthorizationFailedError: no"  # its history
        assert "outbox_pending" in plan
    finally:
        await outbox.close()
        await pool.close()
