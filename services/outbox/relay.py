"""The outbox relay: publishes committed events in outbox order, at least once.

It marks events sent only after the broker has acknowledged all of them, so a relay
killed mid-batch republishes that batch on restart; consumers dedup on the event id.
Batches are pipelined (the next one read and the last one marked while one is in flight)
but sent one after another, each only once the one before it was acknowledged.
Broker and database outages are waited out with capped backoff; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from services.errors import BrokerError, DatabaseError
from services.metrics import count_published
from services.outbox.ports import EventPublisher, OutboxStore, PendingEvent

log = logging.getLogger(__name__)

MARKS_IN_FLIGHT = 2
"""Updates of acknowledged batches running at once, each on its own pooled connection:
marking a batch sent costs the database more than reading it (every row is rewritten),
so with one at a time the updates, not the broker, would set the pace."""


class OutboxRelay:
    def __init__(
        self,
        outbox: OutboxStore,
        publisher: EventPublisher,
        *,
        batch_size: int = 2000,
        idle_wait: float = 1.0,
        max_backoff: float = 5.0,
        name: str = "registry",
    ) -> None:
        self.outbox = outbox
        self.name = name
        self.publisher = publisher
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.max_backoff = max_backoff
        self.published = 0
        self._cluster: str | None = None  # the cluster this relay last saw recorded

    async def publish_pending(self, max_batches: int = 16) -> int:
        """Publish up to `max_batches` batches of pending events; returns how many events
        (0 when standing by or when none is pending).

        The batches are pipelined: while one is in flight to the broker, the one before it
        is marked sent and the next one is read, so the database's share of the work
        overlaps the broker's. Each batch is marked only once the broker has acknowledged
        all of it and the cluster is still the one it was sent to; the next batch is sent
        only after that, so order per key holds across batches.
        """
        if not await self.outbox.lead():
            return 0
        cluster = await self._same_cluster()
        batch = await self.outbox.pending(self.batch_size)
        reading: asyncio.Task[list[PendingEvent]] | None = None
        marking: deque[asyncio.Task[int]] = deque()
        marked = 0
        try:
            for number in range(max_batches):
                if not batch or (number > 0 and not await self.outbox.lead()):
                    break  # nothing more, or another relay took the lead: stand by
                if len(batch) == self.batch_size and number + 1 < max_batches:
                    reading = asyncio.create_task(
                        self.outbox.pending(self.batch_size, after=batch[-1].position)
                    )
                await self.publisher.publish(batch)
                # Also the check before the next batch: it is sent only after this answer.
                if await self.publisher.cluster_id() != cluster:
                    raise BrokerError("the broker changed while publishing; publishing again")
                if len(marking) == MARKS_IN_FLIGHT:
                    marked += await marking.popleft()  # a failed update raises here
                marking.append(asyncio.create_task(self._mark_sent(batch)))
                batch, reading = ([] if reading is None else await reading), None
            while marking:
                marked += await marking.popleft()
        finally:
            await _settle(reading, cancel=True)
            # Batches the broker acknowledged are still marked when a later one fails.
            for task in marking:
                await _settle(task, cancel=False)
        return marked

    async def _mark_sent(self, batch: list[PendingEvent]) -> int:
        await self.outbox.mark_sent([event.position for event in batch])
        self.published += len(batch)
        count_published(self.name, [event.topic for event in batch])
        return len(batch)

    async def _same_cluster(self) -> str:
        """A broker that lost its data comes back as a new cluster: publish everything again."""
        cluster = await self.publisher.cluster_id()
        if cluster == self._cluster:
            return cluster  # the common case: same broker as the last batch, no database trip
        known = await self.outbox.known_cluster()
        if known != cluster:
            if known is not None:
                replayed = await self.outbox.replay_from(position=None, since=None)
                log.warning(
                    "relay: broker cluster %s replaced %s; publishing all %d events again",
                    cluster,
                    known,
                    replayed,
                )
            await self.outbox.remember_cluster(cluster)
        self._cluster = cluster
        return cluster

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                sent = await self.publish_pending()
                backoff = 0.1
                if sent == 0:
                    await self.outbox.wait_for_new(self.idle_wait)
            except (BrokerError, DatabaseError) as exc:
                log.warning("relay: %s; retrying in %.1f s", exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, self.max_backoff)


async def _settle(task: asyncio.Task[Any] | None, *, cancel: bool) -> None:
    """Let a task left behind by a failed pipeline end (cancelled, or run to its end).

    `asyncio.wait` does not raise the task's own failure: the one that stopped the
    pipeline is already on its way up; a cancellation of the relay itself still is raised.
    """
    if task is None:
        return
    if cancel:
        task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        log.debug("relay: a pipelined step failed too: %s", task.exception())
