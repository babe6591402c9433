"""One department's wiring, shared by its two runtimes: the standalone faust worker
(`department.py`) and the department host (`department_host.py`).

Its enforcer on its own pool (as its own database role), its own signing key, its own
outbox and the relay that publishes its acknowledgements and dead letters. No faust here:
the host runs many of these in one process without loading it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from events.authorities import department_authority
from events.backoff import Backoff
from events.catalogue import load_catalogue
from events.codec import EventDecoder, decoder
from events.signing import TrustStore
from services.adapters.department_store import PostgresDepartmentStore, department_schema
from services.adapters.migrate import migrate
from services.adapters.outbox import PostgresOutbox
from services.adapters.postgres import create_pool
from services.adapters.publisher import ClusterQuestion, KafkaPublisher
from services.adapters.same_broker import SameBroker
from services.bootstrap import load_signer, utc_now
from services.config import Settings
from services.consumer import Consumer
from services.consumer.group import relay_outbox
from services.consuming import RawMessage
from services.departments.handlers import BatchOutcome, Enforcer
from services.entrypoints.own_outbox import publisher_for
from services.errors import BrokerError
from services.metrics import count_measures
from services.runtime.service import MAX_BACKOFF_SECONDS, retrying

log = logging.getLogger("redline.department")

# Acknowledgements report a block that is already committed; gathering them this long
# before relaying spares a trickle of single events one outbox round (reads, cluster
# checks, a produce request, a mark) each, the largest cost per batch after faust's own.
ACK_LINGER_SECONDS = 0.2
T = TypeVar("T")


async def first_cluster(settings: Settings, what: str) -> str:
    """The broker's cluster id, waited for: a consumer must know it before it reads."""
    kafka, _ = settings.require()
    probe = KafkaPublisher(kafka, auth=settings.kafka_auth)
    backoff = Backoff(0.1, MAX_BACKOFF_SECONDS)
    try:
        while True:
            try:
                return await probe.cluster_id()
            except BrokerError as exc:
                delay = backoff.next()
                log.warning("%s: %s; retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)
    finally:
        await probe.close()


class DepartmentRuntime:
    """The enforcer and the acknowledgement relay, set up once the worker starts.

    `settings.database_url` is the department's own: its role may write only its schema."""

    def __init__(
        self,
        code: str,
        settings: Settings,
        *,
        decode_event: EventDecoder | None = None,
        question: ClusterQuestion | None = None,
    ) -> None:
        self.department = load_catalogue().department(code)
        self.settings = settings
        self._decode_event = decode_event  # None: under the settings' trust store
        self._question = question  # a host's, shared by its departments' relays
        self._enforcer: Enforcer | None = None
        self._pool: Any = None
        self._outbox: PostgresOutbox | None = None  # woken here after each batch commits
        self._consumer: Consumer[BatchOutcome] | None = None
        self._lock = asyncio.Lock()
        self.same_broker: SameBroker | None = None  # set once the broker is known

    async def migrate(self) -> None:
        _, database = self.settings.require()
        schema = department_schema(self.department.code)
        await self._retrying(
            lambda: migrate(database, package="services.departments.migrations", schema=schema)
        )

    async def enforcer(self) -> Enforcer:
        async with self._lock:
            return await self._make_enforcer()

    async def _make_enforcer(self) -> Enforcer:
        """Called under the lock."""
        if self._enforcer is None:
            _, database = self.settings.require()
            self._pool = await self._retrying(lambda: create_pool(database, max_size=4))
            schema = department_schema(self.department.code)
            self._outbox = PostgresOutbox(self._pool, database, schema=schema, channel=None)
            self._enforcer = Enforcer(
                self.department,
                PostgresDepartmentStore(self._pool, self.department.code),
                self._decode_event or decoder(TrustStore.load(self.settings.trust_store)),
                load_signer(self.settings, department_authority(self.department.code)),
                utc_now,
            )
        return self._enforcer

    async def first_cluster(self) -> str:
        """The broker's cluster id, waited for: the worker must know it before it reads."""
        return await first_cluster(self.settings, self.department.code)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Until it works: the worker stops this task by cancelling it, not by an event."""
        result = await retrying(asyncio.Event(), attempt, what=self.department.code)
        assert result is not None  # only a set stop event gives None
        return result

    async def consumer(self) -> Consumer[BatchOutcome]:
        """The enforcer in the consumer skeleton: each batch retried until stored, then the
        relay woken and the measures counted under the department's labels."""
        async with self._lock:
            if self._consumer is None:
                enforcer = await self._make_enforcer()
                code = self.department.code
                self._consumer = Consumer(
                    code,
                    enforcer.handle,
                    wake=self._wake,
                    count=lambda outcome: count_measures(code, outcome.applied, outcome.lifted),
                )
            return self._consumer

    def _wake(self) -> None:
        if self._outbox is not None:
            self._outbox.wake()  # its acknowledgements are committed: the relay may read

    async def apply(self, messages: Sequence[RawMessage]) -> BatchOutcome:
        """One attempt at a batch (a database error is raised, for the caller to retry)."""
        return await (await self.consumer()).attempt(messages)

    async def enforce(self, messages: list[RawMessage]) -> None:
        """Apply one batch, retrying database errors on the same batch until it commits."""
        await (await self.consumer()).run(asyncio.Event(), messages)

    async def relay(self, stop: asyncio.Event | None = None) -> None:
        await self.enforcer()
        publisher = publisher_for(self.settings, self._question)
        outbox = self._outbox
        assert outbox is not None  # made with the enforcer
        try:
            await relay_outbox(
                outbox, publisher, stop or asyncio.Event(), linger=ACK_LINGER_SECONDS
            )
        finally:
            await outbox.close()
            await publisher.close()
