"""Every test here needs the real broker and Postgres: marked `integration`, so `make unit`
(`-m "not integration"`) leaves them out and never starts the stack. A test elsewhere that
asks for the stack is refused at collection, so the split cannot drift."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.authorities import NATURAL_RESOURCES
from events.signing import TrustStore
from services.bootstrap import load_signer
from services.config import Settings
from tests.conftest import Stack
from tests.integration.bureau import Bureau
from tests.support import producing

HERE = Path(__file__).parent
STACK_FIXTURES = frozenset(
    {"stack", "settings", "db", "registry", "queries", "checks", "registry_app", "module_broker"}
)


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


@pytest.fixture
async def bureau(stack: Stack, settings: Settings, trust: TrustStore) -> AsyncIterator[Bureau]:
    """The registry's stand-in on the session's broker, signing as natural resources with the
    development key (`trust` made it)."""
    async with producing(stack.kafka) as producer:
        yield Bureau(producer, load_signer(settings, NATURAL_RESOURCES))
