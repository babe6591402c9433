"""The blocklist store's contract against PostgreSQL, in a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from services.adapters.blocklist_store import SCHEMA, PostgresBlocklistStore
from services.adapters.db_roles import migrate_all
from services.adapters.postgres import create_pool
from tests.conftest import Stack, create_database
from tests.contracts import blocklist as contract


@pytest.fixture(scope="module")
async def database(stack: Stack) -> str:
    """One database for the module with every shared schema (the registry's, the tracker's
    and the builder's) migrated: each check uses cases, subjects and measures of its own."""
    url = await create_database(stack, migrated=False)
    await migrate_all(url, ())
    return url


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Any]:
    pool = await create_pool(database, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def outbox(pool: Any, schema: str) -> Callable[[], Awaitable[list[str]]]:
    """The event ids committed to `schema`'s outbox, in outbox order."""

    async def ids() -> list[str]:
        rows = await pool.fetch(f"SELECT event_id FROM {schema}.outbox ORDER BY position")
        return [row["event_id"] for row in rows]

    return ids


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_postgres_keeps_the_blocklist_contract(
    check: Callable[[contract.Lists], Awaitable[None]], pool: Any
) -> None:
    await check(contract.Lists(PostgresBlocklistStore(pool), outbox(pool, SCHEMA)))
