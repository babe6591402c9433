"""The registry store's contract against the in-memory fake (no PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.contracts import registry as contract
from tests.fakes.registry import FakeRegistryStore
from tests.fakes.snapshots import event_ids


def harness(store: FakeRegistryStore | None = None) -> contract.Registry:
    """The fake with what it committed to its outbox and audit log."""
    store = store or FakeRegistryStore()

    async def audit() -> list[tuple[str, str]]:
        return [(a.action, a.case_id) for a in store.state.audit]

    return contract.Registry(store, event_ids(lambda: store.state.outbox), audit)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_the_fake_keeps_the_registry_contract(
    check: Callable[[contract.Registry], Awaitable[None]],
) -> None:
    await check(harness())
