"""Outbox ports: what a relay needs from the outbox table and from the broker."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from services.errors import BrokerError


@dataclass(frozen=True)
class OutgoingEvent:
    """A signed, encoded event bound for a topic, as the outbox keeps it."""

    event_id: str
    event_type: str
    topic: str
    key: str
    value: bytes | None  # None is a tombstone on a compacted topic


class PendingEvent(NamedTuple):
    """An unsent event as the relay reads it. A named tuple, not a dataclass: one is made
    per row read, and a tuple is made in a third of the time of a frozen dataclass."""

    position: int
    topic: str
    key: str
    value: bytes | None
    partition: int | None = None  # None: chosen from the key


@dataclass(frozen=True)
class Refusal:
    """Events the broker refused for good: sending them again cannot succeed.

    `kind` is the Kafka error class (a bounded set, fit for a metric label); `each` says
    every one of `positions` is refused on its own (its topic is not writable, or it was
    weighed alone), else the broker refused a record batch holding at least one of them.
    """

    positions: tuple[int, ...]
    kind: str
    reason: str
    each: bool


class Undeliverable(BrokerError):
    """Some events are refused for good. The other events of the call may or may not have
    been delivered: they are sent again (at least once). A BrokerError, so that a caller
    that knows no better retries as before."""

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        self.refusals = tuple(refusals)
        super().__init__(
            "; ".join(f"{len(r.positions)} event(s) refused: {r.reason}" for r in self.refusals)
        )


class OutboxStore(abc.ABC):
    """What the relay needs: pending events in order, and marking them sent."""

    @abc.abstractmethod
    async def lead(self) -> bool:
        """Whether this relay is the one that publishes this outbox (taking the lead if free).

        One relay at a time keeps the publication order; the others stand by.
        """

    @abc.abstractmethod
    async def pending(self, limit: int) -> list[PendingEvent]:
        """The first `limit` unsent events in outbox order."""

    async def pending_besides(
        self, limit: int, in_flight: Sequence[PendingEvent]
    ) -> list[PendingEvent]:
        """The first `limit` unsent events in outbox order, leaving out `in_flight`: read
        while that window is still with the broker, hence not yet marked. Rows that
        committed late under lower positions are included, as `pending` would include them.

        This default reads past the window and drops it; a store may do it more cheaply.
        """
        skipped = {event.position for event in in_flight}
        found = await self.pending(limit + len(skipped))
        return [event for event in found if event.position not in skipped][:limit]

    @abc.abstractmethod
    async def mark_sent(self, positions: Sequence[int]) -> None:
        """Mark these events sent. The relay marks its windows one after another, each
        only once the one before is marked, so the rows marked are an unbroken run."""

    @abc.abstractmethod
    async def quarantine(self, positions: Sequence[int], reason: str) -> int:
        """Set unsent events aside with the reason and time: never deleted, never sent
        again until an operator releases them. Returns how many were set aside."""

    @abc.abstractmethod
    async def quarantined(self) -> int:
        """How many events are set aside now."""

    @abc.abstractmethod
    async def wait_for_new(self, timeout: float) -> None:
        """Return when new events may be pending, or after `timeout` seconds."""

    @abc.abstractmethod
    async def replay_from(self, *, position: int | None, since: datetime | None) -> int:
        """Mark events for publication again; returns how many."""

    @abc.abstractmethod
    async def known_cluster(self) -> str | None:
        """The broker cluster the outbox was last published to."""

    @abc.abstractmethod
    async def remember_cluster(self, cluster_id: str) -> None: ...


class EventPublisher(abc.ABC):
    @abc.abstractmethod
    async def cluster_id(self) -> str:
        """The id of the broker cluster it publishes to, asked afresh."""

    @abc.abstractmethod
    async def publish(self, events: Sequence[PendingEvent]) -> None:
        """Publish all, in order per key, and return once the broker has them all."""

    async def prepare(self, events: Sequence[PendingEvent]) -> Prepared:
        """Do the per-event work of publishing `events` ahead, sending nothing: the relay
        prepares the next window while the one before is with the broker. This default
        leaves all of it to `publish_prepared`."""
        return Prepared(tuple(events))

    async def publish_prepared(self, prepared: Prepared) -> None:
        """Publish what `prepare` made, as `publish` would publish its events."""
        await self.publish(prepared.events)


@dataclass(frozen=True)
class Prepared:
    """A window made ready to send: its events, and the publisher's own work on them
    (None: nothing done ahead)."""

    events: Sequence[PendingEvent]
    work: object = None
