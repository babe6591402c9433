"""The referral store's contract against PostgreSQL, in a database of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.adapters.referral_store import PostgresReferralReader
from services.adapters.registry_store import PostgresRegistryStore
from tests.contracts import referrals as contract
from tests.contracts.registry import Registry
from tests.integration.test_registry_contract import database, harness

__all__ = ["database", "harness"]  # the registry contract's fixtures, reused


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_postgres_keeps_the_referrals_contract(
    check: Callable[[contract.Referrals], Awaitable[None]], harness: Registry
) -> None:
    assert isinstance(harness.store, PostgresRegistryStore)
    await check(contract.Referrals(harness, PostgresReferralReader(harness.store.pool)))
