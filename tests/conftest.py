"""Shared fixtures: the real embedded broker and PostgreSQL, on free ports, per session."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from fastapi import FastAPI

from events.catalogue import load_catalogue
from events.signing import TrustStore
from events.topics import ALL_TOPICS
from services.access import TokenStore
from services.adapters.audit_anchor import AUDIT_CHECKPOINTS
from services.adapters.db_roles import ensure_dev_passwords, login_roles, prepare_database
from services.adapters.kafka import ensure_topics
from services.adapters.migrate import migrate
from services.blocklist.queries import CentralChecks
from services.bootstrap import bootstrap_registry, central_checks, department_queries
from services.config import Settings, load_settings
from services.departments.queries import DepartmentQueries
from services.entrypoints.api import create_app
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
    roles: dict[str, str] = field(default_factory=dict)  # role -> its DATABASE_URL

    @property
    def kafka(self) -> str:
        return self.broker.bootstrap

    @property
    def database_url(self) -> str:
        return self.postgres.url


@contextmanager
def running_broker(data_dir: Path, *, authentication: bool = False) -> Iterator[EmbeddedBroker]:
    """A broker of its own on a free port, stopped (by pid) however the block ends."""
    broker = EmbeddedBroker(data_dir, authentication=authentication)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("redline")
    postgres = EmbeddedPostgres(home / "postgres")
    with running_broker(home / "broker") as broker:
        postgres.start()
        try:
            asyncio.run(ensure_topics(broker.bootstrap, topics=(*ALL_TOPICS, AUDIT_CHECKPOINTS)))
            # As `make run` does: every schema migrated, a role per service (#18).
            roles = asyncio.run(prepare_database(postgres.url, CODES, dev_passwords(home)))
            yield Stack(broker, postgres, home, roles)
        finally:
            postgres.stop()


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of the module's own, not the session's: it holds only what the module's
    tests publish, and what they do to it touches no other module."""
    with running_broker(tmp_path_factory.mktemp("module-broker")) as broker:
        yield broker


CODES = load_catalogue().codes


def dev_passwords(home: Path) -> dict[str, str]:
    """The service roles' development passwords, kept where `make run` keeps them."""
    return ensure_dev_passwords(home / "keys" / "database-roles.json", login_roles(CODES))


def as_role(settings: Settings, url: str) -> Settings:
    """`settings` connecting as one service's role (a URL from `Stack.roles`)."""
    return settings.with_endpoints(settings.kafka_bootstrap or "", url)


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    base = load_settings({"REDLINE_HOME": str(stack.home)})
    return base.with_endpoints(stack.kafka, stack.database_url)


@pytest.fixture(scope="session")
def trust(settings: Settings) -> TrustStore:
    return TrustStore.load(ensure_dev_keys(settings.home))


@pytest.fixture(scope="session")
async def registry(settings: Settings, stack: Stack) -> AsyncIterator[Registry]:
    async with bootstrap_registry(as_role(settings, stack.roles["redline_registry"])) as real:
        yield real


@pytest.fixture(scope="session")
async def queries(settings: Settings, stack: Stack) -> AsyncIterator[DepartmentQueries]:
    async with department_queries(as_role(settings, stack.roles["redline_registry"])) as reads:
        yield reads


@pytest.fixture(scope="session")
async def checks(
    settings: Settings, trust: TrustStore, stack: Stack
) -> AsyncIterator[CentralChecks]:
    api = as_role(settings, stack.roles["redline_registry"])  # as the API reads them
    async with central_checks(api) as central:  # `trust` made the dev subject key
        yield central


@pytest.fixture
async def registry_app(
    settings: Settings, registry: Registry, queries: DepartmentQueries, checks: CentralChecks
) -> AsyncIterator[FastAPI]:
    """The registry API over the session's registry and reads, with the development tokens;
    its health probe's broker client closed after the test (no lifespan runs in process)."""
    app = create_app(settings, registry, queries, checks, TokenStore.load(settings.api_tokens))
    yield app
    await app.state.health.close()


@pytest.fixture(scope="session")
async def db(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(stack.database_url, min_size=1, max_size=4) as pool:
        yield pool


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
