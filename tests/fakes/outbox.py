"""An in-memory outbox and broker for the relay: rows by position, every call logged so a
test can check what happened when, and failures to inject (a mark, a batch, a lead)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from services.errors import BrokerError, DatabaseError
from services.outbox.ports import EventPublisher, OutboxStore, PendingEvent

TOPIC = "violations"


class MemoryOutbox(OutboxStore):
    """Rows by position; records each call so tests can check what happened when."""

    def __init__(self, count: int, log: list[tuple[str, int]]) -> None:
        self.rows = {p: PendingEvent(p, TOPIC, f"key-{p % 7}", b"v") for p in range(1, count + 1)}
        self.sent: set[int] = set()
        self.log = log
        self.fail_mark: int | None = None  # the position whose mark fails
        self.leads = 1_000  # how many more times this relay is told it leads
        self.uncommitted: set[int] = set()  # positions taken whose transaction is still open
        self.after_first_read: list[PendingEvent] = []  # committed once the first read ran
        self.reads = 0
        self.aside: dict[int, str] = {}  # quarantined positions and why

    async def lead(self) -> bool:
        self.leads -= 1
        return self.leads >= 0

    async def pending(self, limit: int) -> list[PendingEvent]:
        await asyncio.sleep(0)  # a real read yields
        found = [
            r
            for p, r in sorted(self.rows.items())
            if p not in self.sent and p not in self.uncommitted and p not in self.aside
        ]
        self.reads += 1
        if self.reads == 1:  # the open transactions commit, and later ones follow
            self.uncommitted.clear()
            self.rows.update({event.position: event for event in self.after_first_read})
        return found[:limit]

    async def mark_sent(self, positions: Sequence[int]) -> None:
        for _ in range(50):  # slower than a publish: still in flight when a later one fails
            await asyncio.sleep(0)
        if self.fail_mark in positions:
            raise DatabaseError("the update failed")
        self.log.append(("marked", max(positions)))
        self.sent.update(positions)

    async def quarantine(self, positions: Sequence[int], reason: str) -> int:
        fresh = [p for p in positions if p not in self.sent and p not in self.aside]
        self.aside.update({p: reason for p in fresh})
        return len(fresh)

    async def quarantined(self) -> int:
        return len(self.aside)

    async def wait_for_new(self, timeout: float) -> None:
        return None

    async def replay_from(self, *, position: int | None, since: datetime | None) -> int:
        count = len(self.sent)
        self.sent.clear()
        return count

    async def known_cluster(self) -> str | None:
        return "cluster-a"

    async def remember_cluster(self, cluster_id: str) -> None:
        return None


class MemoryBroker(EventPublisher):
    def __init__(self, log: list[tuple[str, int]]) -> None:
        self.log = log
        self.published: list[int] = []
        self.cluster = "cluster-a"
        self.fail_at: int | None = None  # the position whose batch the broker refuses
        self.replaced_at: int | None = None  # the broker is replaced while publishing this

    async def cluster_id(self) -> str:
        return self.cluster

    async def publish(self, events: Sequence[PendingEvent]) -> None:
        positions = [e.position for e in events]
        await asyncio.sleep(0)
        if self.fail_at in positions:
            raise BrokerError("the broker refused")
        if self.replaced_at in positions:
            self.cluster = "cluster-b"
        self.published.extend(positions)
        self.log.append(("acknowledged", max(positions)))
