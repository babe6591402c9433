"""The registry store's contract against PostgreSQL, in a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from services.adapters.postgres import create_pool
from services.adapters.registry_store import PostgresRegistryStore
from tests.conftest import Stack, create_database
from tests.contracts import registry as contract


@pytest.fixture(scope="module")
async def database(stack: Stack) -> str:
    """One migrated database for the module: each check uses fresh ids and townships."""
    return await create_database(stack)


@pytest.fixture
async def harness(database: str) -> AsyncIterator[contract.Registry]:
    pool = await create_pool(database, max_size=4)
    store = PostgresRegistryStore(pool, database)

    async def outbox() -> list[str]:
        rows = await pool.fetch("SELECT event_id FROM outbox ORDER BY position")
        return [row["event_id"] for row in rows]

    async def audit() -> list[tuple[str, str]]:
        rows = await pool.fetch("SELECT action, case_id FROM audit_log ORDER BY seq")
        return [(row["action"], row["case_id"]) for row in rows]

    try:
        yield contract.Registry(store, outbox, audit)
    finally:
        await store.outbox.close()
        await pool.close()


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_postgres_keeps_the_registry_contract(
    check: Callable[[contract.Registry], Awaitable[None]], harness: contract.Registry
) -> None:
    await check(harness)
