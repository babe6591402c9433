"""Every test here needs the real broker and Postgres: marked `integration`, so `make unit`
(`-m "not integration"`) leaves them out and never starts the stack. A test elsewhere that
asks for the stack is refused at collection, so the split cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
STACK_FIXTURES = frozenset({"stack", "settings", "db", "registry", "queries", "checks"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
            continue
        wanted = STACK_FIXTURES & set(getattr(item, "fixturenames", ()))
        if wanted:
            raise pytest.UsageError(
                f"{item.nodeid} uses {', '.join(sorted(wanted))}: a test that needs the real "
                "broker or Postgres belongs in tests/integration"
            )
