"""The report store's contract against the in-memory fake, seeded through the fakes of
the stores it reads (no PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.departments.ports import DepartmentStore
from tests.contracts import reports as contract
from tests.fakes.departments import MemoryStore
from tests.fakes.feedback import FakeFeedbackStore
from tests.fakes.registry import FakeRegistryStore
from tests.fakes.reports import FakeReportStore
from tests.fakes.townships import FakeTownshipStore
from tests.unit.test_registry_contract import harness


def sources() -> contract.Sources:
    registry, townships, feedback = FakeRegistryStore(), FakeTownshipStore(), FakeFeedbackStore()
    departments: dict[str, MemoryStore] = {}

    async def department(code: str) -> DepartmentStore:
        return departments.setdefault(code, MemoryStore())

    reports = FakeReportStore(registry, townships, feedback, departments)
    return contract.Sources(harness(registry), townships, department, feedback, reports)


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_the_fake_keeps_the_reports_contract(
    check: Callable[[contract.Sources], Awaitable[None]],
) -> None:
    await check(sources())
