"""The township store's contract against the in-memory fake (no PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.townships.ports import TownshipStore
from tests.contracts import townships as contract
from tests.fakes.townships import FakeTownshipStore


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_the_fake_keeps_the_townships_contract(
    check: Callable[[TownshipStore], Awaitable[None]],
) -> None:
    await check(FakeTownshipStore())
