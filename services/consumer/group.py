"""The consumer skeleton's one bootstrap on an aiokafka consumer group: the builder, the
tracker and every department of the department host run this loop (the standalone
department worker drives the same handler from faust, services/entrypoints/department.py).

Beside the consumer runs the relay of the consumer's own outbox, woken after each batch
commits; a relay that ends takes the consumer with it, so its supervisor starts both
again. Between batches a periodic `tick` does the service's own chore (heartbeats,
overdue notices).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from services.adapters.outbox import PostgresOutbox
from services.adapters.publisher import KafkaPublisher
from services.consumer import Consumer, OutcomeT
from services.consuming import RawMessage
from services.outbox.relay import OutboxRelay

RELAY_IDLE_SECONDS = 0.5


class BatchSource(Protocol):
    """Where a consumer's batches come from and where their offsets go: a consumer group
    of its own (GroupConsumer) or a department host's shared feed (FedMember)."""

    async def batch(self) -> list[RawMessage]: ...

    async def take(
        self, stop: asyncio.Event, consumer: Consumer[OutcomeT], messages: list[RawMessage]
    ) -> OutcomeT | None: ...

    async def stop(self) -> None: ...


async def relay_outbox(
    outbox: PostgresOutbox, publisher: KafkaPublisher, stop: asyncio.Event, *, linger: float = 0.0
) -> None:
    """Publish the consumer's outbox until `stop` (its name is the outbox's schema)."""
    relay = OutboxRelay(
        outbox, publisher, idle_wait=RELAY_IDLE_SECONDS, linger=linger, name=outbox.schema
    )
    await relay.run(stop)


async def consume(
    stop: asyncio.Event,
    group: BatchSource,
    consumer: Consumer[OutcomeT],
    relay: Coroutine[Any, Any, None],
    *,
    tick: Callable[[], Awaitable[None]] | None = None,
    every: float = math.inf,
) -> None:
    """Take batches until `stop`, each stored before its offsets are committed; the
    consumer `group` (started by the caller) is stopped on the way out."""
    relaying = asyncio.create_task(relay, name=f"relay-{consumer.name}")
    last_tick = -math.inf
    try:
        while not stop.is_set():
            if relaying.done():
                relaying.result()  # a relay that died takes its consumer with it
                if stop.is_set():
                    break
                raise RuntimeError(f"{consumer.name}: its relay ended")
            messages = await group.batch()
            if messages and await group.take(stop, consumer, messages) is None:
                break  # stopped before the batch was stored: left uncommitted
            if tick is not None and time.monotonic() - last_tick >= every:
                last_tick = time.monotonic()
                await tick()
    finally:
        relaying.cancel()
        await asyncio.gather(relaying, return_exceptions=True)
        await group.stop()
