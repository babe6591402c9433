"""Outbox ports: what a relay needs from the outbox table and from the broker."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OutgoingEvent:
    """A signed, encoded event bound for a topic, as the outbox keeps it."""

    event_id: str
    event_type: str
    topic: str
    key: str
    value: bytes | None  # None is a tombstone on a compacted topic


@dataclass(frozen=True)
class PendingEvent:
    position: int
    topic: str
    key: str
    value: bytes | None
    partition: int | None = None  # None: chosen from the key


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

    @abc.abstractmethod
    async def mark_sent(self, positions: Sequence[int]) -> None: ...

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
