"""One fetch of the violation stream for every department of a host (#19).

Each hosted department used to poll the broker for the same records with a consumer of
its own: 21 fetches where one does, and the embedded broker answers each poll at a cost
whether anything is new or not. Here the host reads the stream once (`SharedFeed`, no
consumer group) and hands each batch to the departments that are level with it.

A department keeps its own place: a `FedMember` commits its own consumer group's offsets
(`redline-department-<code>`, the standalone worker's, so the monitor's lag and a move to
a process of its own see the same place), on a client of its own whose partitions stay
paused while the feed serves it. A department behind the feed (after a start, a failure,
or while it retries a batch its schema will not take) reads alone from its own offsets
until it is level, then joins: the feed never waits for one department, and one that
falls more than a few batches behind is set to read alone again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.adapters.group_consumer import (
    BATCH_SIZE,
    POLL_MS,
    PacedFetch,
    commit_unless_refused,
    consumer_client,
    start_client,
)
from services.config import Settings
from services.consumer import Consumer, OutcomeT
from services.consuming import RawMessage
from services.errors import BrokerError
from services.metrics import prepare_consumer

log = logging.getLogger(__name__)

COMMIT_EVERY_SECONDS = 1.0  # a department's offsets, committed at most this often
QUEUED_BATCHES = 16  # a member this far behind the feed reads alone until level again


async def _partitions(client: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    try:
        await client.topics()  # loads the metadata
    except KafkaError as exc:
        raise BrokerError(f"cannot read the partitions of {topic}: {exc!r}") from exc
    found = client.partitions_for_topic(topic)
    if not found:
        raise BrokerError(f"{topic} has no partitions on the broker")
    return [TopicPartition(topic, p) for p in sorted(found)]


class SharedFeed:
    """The host's one reader of `topic`, from its end at start: what came before is each
    department's own to read, from its own offsets."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.next: dict[int, int] = {}  # partition -> offset of the next record handed out
        self._members: set[FedMember] = set()
        self._fetch: PacedFetch | None = None  # its client, set up at each start

    @property
    def poll_ms(self) -> int:
        """How long a member waits for the next batch: as long as the feed waits for
        records, so a quiet stream wakes no one."""
        return self._fetch.poll_ms if self._fetch is not None else POLL_MS

    async def start(self) -> None:
        """From the end of the stream (again, after a broker error)."""
        client = consumer_client(self.settings, group=None)
        self._fetch = PacedFetch(client, self.settings.fetch_pace())
        await start_client(client, "the shared feed")
        try:
            partitions = await _partitions(client, self.topic)
            client.assign(partitions)
            await client.seek_to_end(*partitions)
            self.next = {tp.partition: await client.position(tp) for tp in partitions}
        except (KafkaError, BrokerError) as exc:
            await client.stop()
            raise BrokerError(f"the shared feed cannot start: {exc!r}") from exc

    def join(self, member: FedMember) -> None:
        self._members.add(member)

    def leave(self, member: FedMember) -> None:
        self._members.discard(member)

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and hand out until `stop`; a broker error ends it (the host starts it
        again), its members reading alone meanwhile."""
        fetch = self._fetch
        assert fetch is not None, "started first"
        try:
            while not stop.is_set():
                try:
                    messages = await fetch.batch()
                except KafkaError as exc:
                    raise BrokerError(f"the shared feed: {exc!r}") from exc
                if not messages:
                    continue
                for message in messages:
                    self.next[message.partition] = message.offset + 1
                for member in list(self._members):
                    member.offer(messages)
        finally:
            self.next = {}  # none joins until it starts again
            for member in list(self._members):
                member.detach()
            await fetch.client.stop()


class FedMember:
    """One department's batches: from the feed while level with it, else read alone.

    The consumer loop's source (`services.consumer.group.consume`), as a GroupConsumer is
    for a consumer of its own."""

    def __init__(
        self,
        settings: Settings,
        feed: SharedFeed,
        *,
        name: str,
        group: str,
        before_commit: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.name = name
        self.feed = feed
        self.fed = False  # batches come from the feed (own partitions paused)
        self._before_commit = before_commit
        self._queue: asyncio.Queue[list[RawMessage]] = asyncio.Queue(QUEUED_BATCHES)
        self._partitions: list[TopicPartition] = []
        self._place: dict[int, int] = {}  # partition -> next offset not yet taken
        self._reposition = False  # left the feed: own reads resume from `_place`
        self._uncommitted: dict[TopicPartition, int] = {}  # stored, offsets not yet committed
        self._committed_at = -math.inf
        self._client = consumer_client(settings, group=group)
        self._fetch = PacedFetch(self._client, settings.fetch_pace())

    async def start(self) -> None:
        await start_client(self._client, self.name)
        try:
            self._partitions = await _partitions(self._client, self.feed.topic)
            self._client.assign(self._partitions)  # its own group's offsets, no group join
            self._place = {tp.partition: await self._client.position(tp) for tp in self._partitions}
        except (KafkaError, BrokerError) as exc:
            await self._client.stop()
            raise BrokerError(f"{self.name} cannot start: {exc!r}") from exc
        prepare_consumer(self.name, (self.feed.topic,))

    def offer(self, messages: list[RawMessage]) -> None:
        """A batch from the feed (called by it, never blocking it)."""
        try:
            self._queue.put_nowait(messages)
        except asyncio.QueueFull:
            log.warning(
                "%s: %d batches behind the shared feed; reading alone", self.name, QUEUED_BATCHES
            )
            self.detach()

    def detach(self) -> None:
        """Read alone again from the last batch taken."""
        if self.fed:
            self.fed = False
            self._reposition = True
            self.feed.leave(self)
            while not self._queue.empty():
                self._queue.get_nowait()

    def _level(self) -> bool:
        """Everything below the feed's next records is taken: the feed may serve it."""
        feed = self.feed.next
        return bool(feed) and all(self._place.get(p, 0) >= at for p, at in feed.items())

    async def batch(self) -> list[RawMessage]:
        if not self.fed and self._level():
            self._client.pause(*self._partitions)
            self.fed = True
            self.feed.join(self)
        if self.fed:
            try:
                async with asyncio.timeout(self.feed.poll_ms / 1000):
                    messages = await self._queue.get()
            except TimeoutError:
                return []
            # Batches that queued while this department stored the last one are taken as
            # one: a department that falls behind pays one transaction for all of them.
            while len(messages) < BATCH_SIZE and not self._queue.empty():
                messages = messages + self._queue.get_nowait()
            return [m for m in messages if m.offset >= self._place.get(m.partition, 0)]
        if self._reposition:
            for tp in self._partitions:
                self._client.seek(tp, self._place[tp.partition])
            self._client.resume(*self._partitions)
            self._reposition = False
        try:
            return await self._fetch.batch()
        except KafkaError as exc:
            raise BrokerError(f"{self.name}: {exc!r}") from exc

    async def take(
        self, stop: asyncio.Event, consumer: Consumer[OutcomeT], messages: list[RawMessage]
    ) -> OutcomeT | None:
        """Store the batch's effect (database errors retried there), then commit its
        offsets to the department's own group. None when asked to stop first."""
        outcome = await consumer.run(stop, messages)
        if outcome is None:
            return None
        for message in messages:
            self._place[message.partition] = message.offset + 1
            self._uncommitted[TopicPartition(message.topic, message.partition)] = message.offset + 1
        if time.monotonic() - self._committed_at >= COMMIT_EVERY_SECONDS:
            await self._commit()
        return outcome

    async def _commit(self) -> None:
        """The group's offsets up to the batches stored. At most once a second: each
        commit is two broker requests per department (the cluster check and the commit),
        and a crash between commits loses nothing: the batches are handed out again and
        their event ids, stored with their effects, make them skipped as taken."""
        advanced, self._uncommitted = self._uncommitted, {}
        self._committed_at = time.monotonic()
        if advanced:
            await commit_unless_refused(
                self.name, lambda: self._client.commit(advanced), self._before_commit
            )

    async def stop(self) -> None:
        self.detach()
        try:
            await self._commit()
        finally:
            await self._client.stop()
