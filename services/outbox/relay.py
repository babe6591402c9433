"""The outbox relay: publishes committed events in outbox order, at least once.

It marks events sent only after the broker has acknowledged all of them, so a relay
killed mid-batch republishes that batch on restart; consumers dedup on the event id.
Broker and database outages are waited out with capped backoff; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging

from services.errors import BrokerError, DatabaseError
from services.metrics import count_published
from services.outbox.ports import EventPublisher, OutboxStore, PendingEvent
from services.runtime.service import wait_set

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        outbox: OutboxStore,
        publisher: EventPublisher,
        *,
        batch_size: int = 2000,
        idle_wait: float = 1.0,
        linger: float = 0.0,
        max_backoff: float = 5.0,
        name: str = "registry",
    ) -> None:
        self.outbox = outbox
        self.name = name
        self.publisher = publisher
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.linger = linger  # after a wake-up, let more events gather before reading
        self.max_backoff = max_backoff
        self.published = 0
        self._cluster: str | None = None  # the cluster this relay last saw recorded

    async def publish_pending(self, max_batches: int = 16) -> int:
        """Publish up to `max_batches` batches of pending events; returns how many events
        (0 when standing by or when none is pending).

        One batch after another, each read from the lowest unsent position: a row that
        committed late under a lower position (a sequence number is taken before its
        transaction commits) is then always sent before any later event of its key, and
        the rows marked sent are always an unbroken run. Each batch is marked only once
        the broker has acknowledged all of it and the cluster is the one it was sent to.
        """
        if not await self.outbox.lead():
            return 0  # another relay holds the lead: stand by
        cluster = await self._same_cluster()
        marked = 0
        for number in range(max_batches):
            if number > 0 and not await self.outbox.lead():
                break
            batch = await self.outbox.pending(self.batch_size)
            if not batch:
                break
            await self.publisher.publish(batch)
            # Also the check for the next batch: it is sent only after this answer.
            if await self.publisher.cluster_id() != cluster:
                raise BrokerError("the broker changed while publishing; publishing again")
            marked += await self._mark_sent(batch)
            if len(batch) < self.batch_size:
                break
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
                if sent == 0 or sent % self.batch_size:
                    # The last batch was short: all that had committed is sent. An event
                    # committing since then has woken the wait already (a NOTIFY from its
                    # insert, or its writer's wake()), so no read is spent to learn that
                    # nothing is left.
                    await self.outbox.wait_for_new(self.idle_wait)
                    if self.linger:
                        await wait_set(stop, self.linger)
            except (BrokerError, DatabaseError) as exc:
                log.warning("relay: %s; retrying in %.1f s", exc, backoff)
                await wait_set(stop, backoff)
                backoff = min(backoff * 2, self.max_backoff)
