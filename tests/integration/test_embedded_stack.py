"""The embedded broker and Postgres are real servers, and setup is idempotent."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from events.topics import ALL_TOPICS
from services.adapters.kafka import ensure_topics
from services.adapters.migrate import load_migrations, migrate
from services.errors import DatabaseError
from tests.conftest import Stack, create_database

# Longer than the suite's 30 s per test: starts make run's whole system.
pytestmark = pytest.mark.timeout(180)


async def test_every_topic_exists_with_its_partitions(stack: Stack) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka)
    await admin.start()
    try:
        described = await admin.describe_topics([topic.name for topic in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {entry["topic"]: len(entry["partitions"]) for entry in described}
    assert partitions == {topic.name: topic.partitions for topic in ALL_TOPICS}


async def test_creating_topics_again_creates_nothing(stack: Stack) -> None:
    assert await ensure_topics(stack.kafka) == []


async def test_migrations_apply_once_even_from_two_processes_at_once(stack: Stack) -> None:
    url = await create_database(stack, migrated=False)
    first, second = await asyncio.gather(migrate(url), migrate(url))
    expected = [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    assert sorted([first, second], key=len) == [[], expected]
    assert await migrate(url) == []
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await conn.close()
    assert [row["version"] for row in rows] == [m.version for m in load_migrations()]


async def test_an_edited_migration_is_refused(stack: Stack) -> None:
    url = await create_database(stack, migrated=False)
    await migrate(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE schema_migrations SET checksum = 'tampered' WHERE version = 1")
    finally:
        await conn.close()
    with pytest.raises(DatabaseError, match="was edited after it was applied"):
        await migrate(url)
