"""What the blocklist builder's and the feedback tracker's processes share: their own
schema migrated and a pool on it, the outbox in that schema with the publisher its relay
sends through, and the loop that takes batches beside that relay, closing all of it on
the way out."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from services.adapters.group_consumer import GroupConsumer
from services.adapters.migrate import migrate
from services.adapters.outbox import PostgresOutbox
from services.adapters.postgres import create_pool
from services.adapters.publisher import ClusterQuestion, KafkaPublisher
from services.config import Settings
from services.consumer import Consumer, OutcomeT
from services.consumer.group import consume, relay_outbox
from services.consuming import RawMessage
from services.runtime.service import retrying


def publisher_for(settings: Settings, question: ClusterQuestion | None = None) -> KafkaPublisher:
    """A publisher to the deployment's broker, under the process's own Kafka login (its
    cluster question shared with the process's other publishers, if given)."""
    kafka, _ = settings.require()
    return KafkaPublisher(
        kafka,
        replication_factor=settings.kafka_replication_factor,
        auth=settings.kafka_auth,
        question=question,
    )


async def own_pool(
    settings: Settings, stop: asyncio.Event, *, migrations: str, schema: str, what: str
) -> Any:
    """A pool on the database once the service's own schema is migrated, database outages
    waited out; None if asked to stop first."""
    _, database = settings.require()
    migrated = await retrying(
        stop, lambda: migrate(database, package=migrations, schema=schema), what=what
    )
    if migrated is None:
        return None
    return await retrying(stop, lambda: create_pool(database, max_size=4), what=what)


@dataclass(frozen=True)
class OwnOutbox:
    """A consuming service's outbox in its own schema, on its pool, and the publisher its
    relay sends through."""

    pool: Any
    outbox: PostgresOutbox
    publisher: KafkaPublisher

    @classmethod
    def open(cls, settings: Settings, pool: Any, schema: str) -> OwnOutbox:
        _, database = settings.require()
        outbox = PostgresOutbox(pool, database, schema=schema, channel=None)
        return cls(pool, outbox, publisher_for(settings))

    async def consume(
        self,
        stop: asyncio.Event,
        group: GroupConsumer,
        name: str,
        handle: Callable[[Sequence[RawMessage]], Awaitable[OutcomeT]],
        *,
        tick: Callable[[], Awaitable[None]] | None = None,
        every: float = math.inf,
    ) -> None:
        """Take batches from `group` (started by the caller) with `handle` until `stop`,
        the relay woken after each; everything is closed on the way out."""
        try:
            await consume(
                stop,
                group,
                Consumer(name, handle, wake=self.outbox.wake),
                relay_outbox(self.outbox, self.publisher, stop),
                tick=tick,
                every=every,
            )
        finally:
            await self.close()

    async def close(self) -> None:
        await self.outbox.close()
        await self.publisher.close()
        await self.pool.close()
