"""The blocklist store's contract against the in-memory fake (no PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.contracts import blocklist as contract
from tests.fakes.blocklist import FakeBlocklistStore
from tests.fakes.snapshots import event_ids


def harness() -> contract.Lists:
    """The fake with what it committed to its outbox."""
    store = FakeBlocklistStore()
    return contract.Lists(store, event_ids(lambda: store.state.outbox))


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_the_fake_keeps_the_blocklist_contract(
    check: Callable[[contract.Lists], Awaitable[None]],
) -> None:
    await check(harness())
