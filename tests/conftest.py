"""Shared fixtures: the real embedded broker and PostgreSQL, on free ports, per session."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from events.signing import TrustStore
from services.adapters.kafka import ensure_topics
from services.adapters.migrate import migrate
from services.blocklist.queries import CentralChecks
from services.bootstrap import bootstrap_registry, central_checks, department_queries
from services.config import Settings, load_settings
from services.departments.queries import DepartmentQueries
from services.registry.handlers import Registry
from services.runtime.devkeys import ensure_dev_keys
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres

# The fixtures' servers reach the services by address, as external servers do, and a
# service on external servers refuses development keys unless told: these are test systems
# (subprocesses inherit this too).
os.environ["REDLINE_DEV_KEYS"] = "1"


@dataclass
class Stack:
    broker: EmbeddedBroker
    postgres: EmbeddedPostgres
    home: Path

    @property
    def kafka(self) -> str:
        return self.broker.bootstrap

    @property
    def database_url(self) -> str:
        return self.postgres.url


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("redline")
    broker = EmbeddedBroker(home / "broker")
    postgres = EmbeddedPostgres(home / "postgres")
    broker.start()
    try:
        postgres.start()
        try:
            asyncio.run(ensure_topics(broker.bootstrap))
            asyncio.run(migrate(postgres.url))
            yield Stack(broker, postgres, home)
        finally:
            postgres.stop()
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    base = load_settings({"REDLINE_HOME": str(stack.home)})
    return base.with_endpoints(stack.kafka, stack.database_url)


@pytest.fixture(scope="session")
def trust(settings: Settings) -> TrustStore:
    return TrustStore.load(ensure_dev_keys(settings.home))


@pytest.fixture(scope="session")
async def registry(settings: Settings) -> AsyncIterator[Registry]:
    async with bootstrap_registry(settings) as real:
        yield real


@pytest.fixture(scope="session")
async def queries(settings: Settings) -> AsyncIterator[DepartmentQueries]:
    async with department_queries(settings) as reads:
        yield reads


@pytest.fixture(scope="session")
async def checks(settings: Settings, trust: TrustStore) -> AsyncIterator[CentralChecks]:
    async with central_checks(settings) as central:  # `trust` made the dev subject key
        yield central


@pytest.fixture(scope="session")
async def db(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def create_database(stack: Stack, *, migrated: bool = True) -> str:
    """A new database on the session's server, for tests that need one of their own."""
    name = "t_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(stack.database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    url = stack.database_url.rsplit("/", 1)[0] + "/" + name
    if migrated:
        await migrate(url)
    return url


@pytest.fixture
async def own_database(stack: Stack, settings: Settings) -> Settings:
    """Settings whose database is this test's alone (the broker is still shared)."""
    return settings.with_endpoints(stack.kafka, await create_database(stack))
