"""Shared fixtures: the real embedded broker and PostgreSQL, on free ports, per session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.adapters.kafka import ensure_topics
from services.adapters.migrate import migrate
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres


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
