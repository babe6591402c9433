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
import math
import time
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from services.errors import BrokerError, DatabaseError
from services.metrics import count_published, count_quarantined, show_quarantined
from services.outbox.ports import (
    EventPublisher,
    OutboxStore,
    PendingEvent,
    Prepared,
    Undeliverable,
)
from services.runtime.service import wait_set

log = logging.getLogger(__name__)

QUARANTINE_RECOUNT_S = 60.0  # how often the quarantined gauge is read again (a release)
# How often an idle relay asks the broker whether it is still the cluster it published to
# (one that lost its data comes back as a new one, and everything is published again).
# A relay with events to send asks before every window; an idle one asking at each wake-up
# was most of the broker's requests at rest (#19).
CLUSTER_RECHECK_S = 5.0


@dataclass(eq=False)
class OutboxRelay:
    """One outbox's relay to the broker; `name` labels its metrics and logs."""

    outbox: OutboxStore
    publisher: EventPublisher
    _: KW_ONLY
    batch_size: int = 2000
    idle_wait: float = 1.0
    linger: float = 0.0  # after a wake-up, let more events gather before reading
    max_backoff: float = 5.0
    name: str = "registry"
    published: int = field(default=0, init=False)
    quarantined: int = field(default=0, init=False)  # events this relay set aside
    _cluster: str | None = field(default=None, init=False)  # the cluster last seen recorded
    _cluster_seen_at: float = field(default=-math.inf, init=False)  # when last asked
    _counted_at: float | None = field(default=None, init=False)  # the gauge last read

    async def publish_pending(self, max_batches: int = 16) -> int:
        """Publish up to `max_batches` windows of pending events; returns how many events
        were marked sent (0 when standing by or when none is pending).

        Pipelined, with the order of the one-window-after-another relay: while a window is
        with the broker, the mark of the window before it commits and then the next window
        is read, leaving out the one in flight. Each read starts from the lowest unsent
        position, so a row that committed late under a lower position (a sequence number
        is taken before its transaction commits) goes out before any later event of its
        key. Windows are sent one after another, each only once the broker acknowledged
        the one before it and is still the same cluster, so a failed send never has a
        later window delivered past it. Marks commit one after another, each only once the
        window before it is marked: the rows marked are always an unbroken run of what was
        acknowledged. Events of a window refused for good are quarantined and the rest
        marked, so a window is always settled as a whole.
        """
        if not await self.outbox.lead():
            return 0  # another relay holds the lead: stand by
        opening = await self._opening()
        if opening is None:
            return 0
        cluster, prepared = opening
        published_before = self.published
        marking: asyncio.Task[int] | None = None  # the last window's mark, committing
        ahead: asyncio.Task[Prepared] | None = None  # the next window, being read
        try:
            for number in range(max_batches):
                window = list(prepared.events)
                if not window:
                    break
                ahead = None
                if len(window) == self.batch_size and number + 1 < max_batches:
                    ahead = asyncio.create_task(self._read_ahead(marking, window))
                delivered = await self._deliver(prepared)
                # The next window is sent only to the cluster that took this one. After the
                # last, the next call's opening asks before anything more is sent, and a
                # change seen there publishes everything again, this window with it: asking
                # here as well was one broker round trip more per wake-up (#19).
                if ahead is not None and await self.publisher.cluster_id() != cluster:
                    raise BrokerError("the broker changed while publishing; publishing again")
                if ahead is None:
                    if marking is not None:
                        await marking
                    prepared = Prepared(())
                else:
                    prepared = await ahead  # it waited for the mark before this window's
                marking = asyncio.create_task(self._mark_sent(delivered))
            if marking is not None:
                await marking
        except BaseException as failure:
            await self._abandon(failure, marking, ahead)
            raise
        return self.published - published_before

    @staticmethod
    async def _abandon(failure: BaseException, *under_way: asyncio.Task[Any] | None) -> None:
        """Settle what is under way when a window fails: a mark already started commits
        (the windows before the failure stay marked), the window read ahead is dropped
        unsent. A relay being stopped cancels both instead."""
        tasks = [task for task in under_way if task is not None]
        if isinstance(failure, asyncio.CancelledError):
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _read_ahead(
        self, marking: asyncio.Task[int] | None, in_flight: list[PendingEvent]
    ) -> Prepared:
        """The window after `in_flight`, read and made ready to send while that one is
        with the broker: read once the window before it is marked (else that one would be
        read again), and only while this relay leads (empty: stop after the one in flight).
        """
        if marking is not None:
            await marking
        if not await self.outbox.lead():
            return Prepared(())
        window = await self.outbox.pending_besides(self.batch_size, in_flight)
        return await self.publisher.prepare(window)

    async def _deliver(self, prepared: Prepared) -> list[PendingEvent]:
        """Send a window; returns its events the broker acknowledged (all but those set
        aside for good)."""
        window = list(prepared.events)
        try:
            await self.publisher.publish_prepared(prepared)
        except Undeliverable as refused:
            return await self._set_aside(window, refused)
        return window

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

    async def _opening(self) -> tuple[str, Prepared] | None:
        """The broker's cluster and the first window; None when nothing is pending and the
        broker was asked a moment ago."""
        first: Prepared | None = None
        if time.monotonic() - self._cluster_seen_at < CLUSTER_RECHECK_S:
            first = Prepared(await self.outbox.pending(self.batch_size))
            if not first.events:
                return None
        cluster, again = await self._same_cluster()
        if first is None or again:  # a replay puts older events before `first`
            first = Prepared(await self.outbox.pending(self.batch_size))
        return cluster, first

    async def _same_cluster(self) -> tuple[str, bool]:
        """A broker that lost its data comes back as a new cluster: publish everything again.
        The cluster, and whether its events were all set to be published again."""
        cluster = await self.publisher.cluster_id()
        self._cluster_seen_at = time.monotonic()
        if cluster == self._cluster:
            return cluster, False  # the common case: same broker as before, no database trip
        known = await self.outbox.known_cluster()
        again = False
        if known != cluster:
            if known is not None:
                again = True
                replayed = await self.outbox.replay_from(position=None, since=None)
                log.warning(
                    "relay: broker cluster %s replaced %s; publishing all %d events again",
                    cluster,
                    known,
                    replayed,
                )
            await self.outbox.remember_cluster(cluster)
        self._cluster = cluster
        return cluster, again

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
