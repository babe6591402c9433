"""The skeleton's claim on PostgreSQL, and the builder's and the tracker's stores with it.

Every consumer's tracking table is keyed on the event id (the tracker's shared table on
consumer and event id), so one `INSERT ... ON CONFLICT DO NOTHING RETURNING` claims a
batch: a second transaction claiming the same id waits for the first to end, and then
finds it taken. The blocklist and feedback stores gain `claim` here by subclassing, so
their adapters stay as they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg

from services.adapters.blocklist_store import (
    SCHEMA as BLOCKLIST_SCHEMA,
)
from services.adapters.blocklist_store import (
    PostgresBlocklistStore,
    PostgresBlocklistTransaction,
)
from services.adapters.feedback_store import PostgresFeedbackStore, PostgresFeedbackTransaction
from services.blocklist.handlers import ListTransaction
from services.consumer import Consumed
from services.feedback.handlers import CONSUMER as TRACKER
from services.feedback.handlers import TrackerTransaction


async def claim_events(
    conn: asyncpg.Connection, schema: str, events: Sequence[Consumed]
) -> set[str]:
    """Claim in `schema`.consumed_events (event_id, event_type): the ids not yet taken."""
    rows = await conn.fetch(
        f"INSERT INTO {schema}.consumed_events (event_id, event_type) "
        "SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (event_id) DO NOTHING "
        "RETURNING event_id",
        [event.event_id for event in events],
        [event.event_type for event in events],
    )
    return {row["event_id"] for row in rows}


async def claim_shared(
    conn: asyncpg.Connection, consumer: str, events: Sequence[Consumed]
) -> set[str]:
    """Claim in the shared consumed_events (consumer, event_id): the ids not yet taken."""
    rows = await conn.fetch(
        "INSERT INTO consumed_events (consumer, event_id) "
        "SELECT $1, * FROM unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        [event.event_id for event in events],
    )
    return {row["event_id"] for row in rows}


class ClaimingBlocklistTransaction(PostgresBlocklistTransaction, ListTransaction):
    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        return await claim_events(self.conn, BLOCKLIST_SCHEMA, events)


class ClaimingBlocklistStore(PostgresBlocklistStore):
    """The blocklist store whose transactions claim event ids (the builder's lock kept)."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ClaimingBlocklistTransaction]:
        async with super().transaction() as tx:
            assert isinstance(tx, PostgresBlocklistTransaction)
            yield ClaimingBlocklistTransaction(tx.conn)


class ClaimingFeedbackTransaction(PostgresFeedbackTransaction, TrackerTransaction):
    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        return await claim_shared(self.conn, TRACKER, events)


class ClaimingFeedbackStore(PostgresFeedbackStore):
    """The feedback store whose transactions claim event ids."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ClaimingFeedbackTransaction]:
        async with super().transaction() as tx:
            assert isinstance(tx, PostgresFeedbackTransaction)
            yield ClaimingFeedbackTransaction(tx.conn)
