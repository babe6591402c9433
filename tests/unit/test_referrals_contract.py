"""The referral store's contract against the in-memory fake (no PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.contracts import referrals as contract
from tests.fakes.registry import FakeReferralReader, FakeRegistryStore
from tests.unit.test_registry_contract import harness


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_the_fake_keeps_the_referrals_contract(
    check: Callable[[contract.Referrals], Awaitable[None]],
) -> None:
    store = FakeRegistryStore()
    await check(contract.Referrals(harness(store), FakeReferralReader(store)))
