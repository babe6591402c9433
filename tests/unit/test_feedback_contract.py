"""The feedback store's contract against the in-memory fake (no PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.feedback.status import ResponseRow
from tests.contracts import feedback as contract
from tests.fakes.feedback import FakeFeedbackStore
from tests.fakes.snapshots import event_ids


def harness() -> contract.Ledger:
    """The fake with its committed rows and outbox."""
    store = FakeFeedbackStore()

    async def rows(case_id: str) -> dict[contract.Owed, ResponseRow]:
        return {
            (r.department, r.measure, r.action): r.seen()
            for r in store.state.rows.values()
            if r.case_id == case_id
        }

    return contract.Ledger(store, rows, event_ids(lambda: store.state.outbox))


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_the_fake_keeps_the_feedback_contract(
    check: Callable[[contract.Ledger], Awaitable[None]],
) -> None:
    await check(harness())
