"""The report store's contract against PostgreSQL, seeded through the real adapters of the
stores it reads, in the registry contract's database of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.adapters.department_store import PostgresDepartmentStore, department_schema
from services.adapters.feedback_store import PostgresFeedbackStore
from services.adapters.migrate import migrate
from services.adapters.registry_store import PostgresRegistryStore
from services.adapters.report_store import PostgresReportStore
from services.adapters.township_store import PostgresTownshipStore
from services.departments.ports import DepartmentStore
from tests.contracts import reports as contract
from tests.contracts.registry import Registry
from tests.integration.test_registry_contract import database, harness

__all__ = ["database", "harness"]  # the registry contract's fixtures, reused

DEPARTMENT_MIGRATIONS = "services.departments.migrations"


@pytest.mark.parametrize("check", contract.CHECKS, ids=lambda check: check.__name__)
async def test_postgres_keeps_the_reports_contract(
    check: Callable[[contract.Sources], Awaitable[None]], database: str, harness: Registry
) -> None:
    assert isinstance(harness.store, PostgresRegistryStore)
    pool = harness.store.pool

    async def department(code: str) -> DepartmentStore:
        """The department's schema migrated here, as a department that ran here has it."""
        await migrate(database, package=DEPARTMENT_MIGRATIONS, schema=department_schema(code))
        return PostgresDepartmentStore(pool, code)

    townships, reports = PostgresTownshipStore(database), PostgresReportStore(database)
    feedback = PostgresFeedbackStore(pool)
    await check(contract.Sources(harness, townships, department, feedback, reports))
