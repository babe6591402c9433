"""The outbox relay: publishes committed events in outbox order, at least once.

It marks events sent only after the broker has acknowledged all of them, so a relay
killed mid-batch republishes that batch on restart; consumers dedup on the event id.
Broker and database outages are waited out with capped backoff; nothing is skipped.

An event the broker refuses for good (not authorised for its topic, too large, an invalid
topic name) is quarantined: set aside in the outbox with the reason and time, counted,
logged once, and the relay goes on with the events behind it. Later events of the same
key are delivered past it (as Kafka Connect's dead-letter queue does); the log line and
the quarantine name the key, and the alert stays on until an operator releases the event.
"""

from __future__ import annotations

import asyncio
import logging
import time

from services.errors import BrokerError, DatabaseError
from services.metrics import count_published, count_quarantined, show_quarantined
from services.outbox.ports import EventPublisher, OutboxStore, PendingEvent, Undeliverable
from services.runtime.service import wait_set

log = logging.getLogger(__name__)

QUARANTINE_RECOUNT_S = 60.0  # how often the quarantined gauge is read again (a release)


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
        self.quarantined = 0  # events this relay set aside
        self._cluster: str | None = None  # the cluster this relay last saw recorded
        self._counted_at: float | None = None  # when the quarantined gauge was last read

    async def publish_pending(self, max_batches: int = 16) -> int:
        """Publish up to `max_batches` batches of pending events; returns how many events
        (0 when standing by or when none is pending).

        One batch after another, each read from the lowest unsent position: a row that
        committed late under a lower position (a sequence number is taken before its
        transaction commits) is then always sent before any later event of its key, and
        the rows marked sent are always an unbroken run. Each batch is marked only once
        the broker has acknowledged all of it and the cluster is the one it was sent to.
        Events of a batch refused for good are quarantined and the rest marked, so a
        batch is always settled as a whole.
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
            try:
                await self.publisher.publish(batch)
                delivered = batch
            except Undeliverable as refused:
                delivered = await self._set_aside(batch, refused)
            # Also the check for the next batch: it is sent only after this answer.
            if await self.publisher.cluster_id() != cluster:
                raise BrokerError("the broker changed while publishing; publishing again")
            marked += await self._mark_sent(delivered)
            if len(batch) < self.batch_size:
                break
        return marked

    async def _mark_sent(self, batch: list[PendingEvent]) -> int:
        if not batch:
            return 0
        await self.outbox.mark_sent([event.position for event in batch])
        self.published += len(batch)
        count_published(self.name, [event.topic for event in batch])
        return len(batch)

    async def _set_aside(
        self, events: list[PendingEvent], refused: Undeliverable
    ) -> list[PendingEvent]:
        """Quarantine what the broker refused for good; returns the events delivered.

        Every event a refusal does not name was acknowledged. A refusal of a whole record
        batch does not say which of its events is at fault: its halves are sent again,
        each alone, until the refused events stand alone (a batch none of whose events is
        refused alone is then simply delivered).
        """
        named = {position for refusal in refused.refusals for position in refusal.positions}
        delivered = [event for event in events if event.position not in named]
        by_position = {event.position: event for event in events}
        for refusal in refused.refusals:
            suspects = [by_position[p] for p in refusal.positions if p in by_position]
            if refusal.each or len(suspects) == 1:
                await self._quarantine(suspects, refusal.kind, refusal.reason)
                continue
            half = len(suspects) // 2
            for part in (suspects[:half], suspects[half:]):
                try:
                    await self.publisher.publish(part)
                    delivered += part
                except Undeliverable as again:
                    delivered += await self._set_aside(part, again)
        return sorted(delivered, key=lambda event: event.position)

    async def _quarantine(self, events: list[PendingEvent], kind: str, reason: str) -> int:
        if not events:
            return 0
        count = await self.outbox.quarantine([event.position for event in events], reason)
        for event in events:
            log.error(
                "relay %s: event %d (topic %s, key %s) quarantined, never to be retried on "
                "its own: %s. Later events of its key go on. Once the cause is fixed, "
                "release it: UPDATE <schema>.outbox SET quarantined_at = NULL "
                "WHERE position = %d",
                self.name,
                event.position,
                event.topic,
                event.key,
                reason,
                event.position,
            )
        self.quarantined += count
        count_quarantined(self.name, kind, count)
        await self._recount()
        return count

    async def _recount(self) -> None:
        """Read how many events are set aside now (released ones leave the count)."""
        show_quarantined(self.name, await self.outbox.quarantined())
        self._counted_at = time.monotonic()

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
                if self._counted_at is None or (
                    time.monotonic() - self._counted_at > QUARANTINE_RECOUNT_S
                ):
                    await self._recount()
                quarantined_before = self.quarantined
                sent = await self.publish_pending()
                # Rows set aside were settled as much as rows sent: only a short window
                # means the backlog is drained, whichever way its rows went.
                settled = sent + self.quarantined - quarantined_before
                backoff = 0.1
                if settled == 0 or settled % self.batch_size:
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
