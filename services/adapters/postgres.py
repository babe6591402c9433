"""asyncpg pool creation, with driver errors wrapped where they enter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from services.errors import DatabaseError

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
