"""The feedback store's contract against PostgreSQL, in a database of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.adapters.feedback_store import SCHEMA, PostgresFeedbackStore
from services.feedback.status import ResponseRow
from tests.contracts import feedback as contract
from tests.integration.test_blocklist_contract import database, outbox, pool

__all__ = ["database", "pool"]  # the blocklist contract's fixtures, reused


def responses(pool: Any) -> Callable[[str], Awaitable[dict[contract.Owed, ResponseRow]]]:
    """A case's committed rows of `responses`, as the readers see them."""

    async def rows(case_id: str) -> dict[contract.Owed, ResponseRow]:
        found = await pool.fetch(
            "SELECT case_id, department, measure, action, required_at, due_at, done_at, "
            "failed_at, overdue_at, reference, error FROM responses WHERE case_id = $1",
            case_id,
        )
        return {(r["department"], r["measure"], r["action"]): ResponseRow(**dict(r)) for r in found}

    return rows


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_postgres_keeps_the_feedback_contract(
    check: Callable[[contract.Ledger], Awaitable[None]], pool: Any
) -> None:
    await check(contract.Ledger(PostgresFeedbackStore(pool), responses(pool), outbox(pool, SCHEMA)))
