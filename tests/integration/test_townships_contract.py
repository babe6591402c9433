"""The township store's contract against PostgreSQL, in a database of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.adapters.township_store import PostgresTownshipStore
from services.townships.ports import TownshipStore
from tests.conftest import Stack, create_database
from tests.contracts import townships as contract


@pytest.fixture(scope="module")
async def database(stack: Stack) -> str:
    """One migrated database for the module: each check uses townships of its own."""
    return await create_database(stack)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_postgres_keeps_the_townships_contract(
    check: Callable[[TownshipStore], Awaitable[None]], database: str
) -> None:
    await check(PostgresTownshipStore(database))
