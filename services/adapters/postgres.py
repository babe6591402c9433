"""asyncpg pool creation, with driver errors wrapped where they enter; the consumers' claim.

Every consumer's tracking table is keyed on the event id (the tracker's shared table on
consumer and event id), so one `INSERT ... ON CONFLICT DO NOTHING RETURNING` claims a
batch: a second transaction claiming the same id waits for the first to end, and then
finds it taken (services.consumer.take).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

from services.errors import DatabaseError

if TYPE_CHECKING:
    from services.consumer import Consumed

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    # A connection broken mid-operation can report a confused protocol state.
    asyncpg.exceptions.InternalClientError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection returned without asyncpg's reset statement (advisory unlock,
    CLOSE ALL, UNLISTEN, RESET ALL): one round trip per use, and nothing to undo, since
    pooled connections only ever hold transaction-scoped state (SET LOCAL, xact locks).
    An open transaction is still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(database_url: str, *, min_size: int = 1, max_size: int = 10) -> Any:
    try:
        return await asyncpg.create_pool(
            database_url,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            connection_class=PooledConnection,
        )
    except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc


@asynccontextmanager
async def connection(pool: Any) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection whose driver errors arrive as DatabaseError."""
    try:
        async with pool.acquire() as conn:
            yield conn
    except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"database error: {exc}") from exc


@asynccontextmanager
async def pooled_transaction(pool: Any) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection in a transaction; its driver errors (the commit's too) arrive as
    DatabaseError."""
    async with connection(pool) as conn, conn.transaction():
        yield conn


@asynccontextmanager
async def own_transaction(
    database_url: str, *, readonly: bool
) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, for rare commands and views (no pool held open), in one
    transaction: a read-only one is one REPEATABLE READ snapshot, so its figures agree."""
    try:
        conn = await asyncpg.connect(database_url)
    except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot connect to the database: {exc}") from exc
    try:
        await _init_connection(conn)  # the same JSON codecs as a pooled connection
        isolation: Any = "repeatable_read" if readonly else "read_committed"
        async with conn.transaction(isolation=isolation, readonly=readonly):
            yield conn
    except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"database error: {exc}") from exc
    finally:
        await conn.close()


def placeholders(count: int) -> str:
    """`$1, $2, ...`: the parameters of a statement with `count` values."""
    return ", ".join(f"${n}" for n in range(1, count + 1))


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
