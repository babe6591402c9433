"""A department host's one fetch of the violation stream (#19), on the real broker: a
department behind the feed reads alone from its own group's offsets until level, then is
served by the feed; one that falls behind is set to read alone and catches up; nothing is
lost or taken twice, and each department's own group holds its place."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.adapters.shared_feed import QUEUED_BATCHES, FedMember, SharedFeed
from services.config import Settings, load_settings
from services.consumer import Consumer
from services.consuming import RawMessage
from services.runtime.embedded import EmbeddedBroker
from tests.support import eventually, producing

PARTITIONS = 3


@dataclass
class Taken:
    """What a department took, as the consumer skeleton's outcome."""

    duplicates: int = 0
    dead_letters: list[str] = field(default_factory=list)


@dataclass
class Department:
    """A member and everything it took, (partition, offset) in order; `gate` holds its
    handler while cleared, as a department whose schema will not take a batch retries it."""

    member: FedMember
    taken: list[tuple[int, int]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    batches: list[int] = field(default_factory=list)  # the size of each batch handled

    async def handle(self, messages: Sequence[RawMessage]) -> Taken:
        await self.gate.wait()
        self.taken += [(m.partition, m.offset) for m in messages]
        self.batches.append(len(messages))
        return Taken()

    async def run(self, stop: asyncio.Event) -> None:
        consumer = Consumer(self.member.name, self.handle)
        while not stop.is_set():
            messages = await self.member.batch()
            if messages:
                await self.member.take(stop, consumer, messages)


@pytest.fixture
def topic(module_broker: EmbeddedBroker) -> str:
    name = f"feed-test-{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=module_broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
        finally:
            await admin.close()

    asyncio.run(create())
    return name


@pytest.fixture
def feed_settings(module_broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    base = load_settings({"REDLINE_HOME": str(tmp_path)})
    return base.with_endpoints(module_broker.bootstrap, "postgresql://not-used-here")


async def _publish(bootstrap: str, topic: str, count: int, *, each_alone: bool = False) -> None:
    async with producing(bootstrap) as producer:
        for n in range(count):
            sent = await producer.send(topic, f"{n}".encode(), partition=n % PARTITIONS)
            if each_alone:
                await sent
        await producer.flush()


async def _served_by_the_feed(departments: list[Department]) -> None:
    async def joined() -> bool:
        return all(d.member.fed for d in departments)

    await eventually(joined, what="every department served by the feed")


async def _one_batch_each(bootstrap: str, topic: str, feed: SharedFeed, count: int) -> None:
    """Publish `count` records, each once the feed has fetched the one before, so the feed
    hands out one batch per record."""
    for n in range(count):
        await _publish(bootstrap, topic, 1, each_alone=True)

        async def fetched(n: int = n) -> bool:
            return sum(feed.next.values()) > n

        await eventually(fetched, what=f"record {n} fetched")


async def _committed(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    client = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await client.start()
    try:
        return {p: await client.committed(TopicPartition(topic, p)) or 0 for p in range(PARTITIONS)}
    finally:
        await client.stop()


@contextlib.asynccontextmanager
async def _hosting(
    settings: Settings, topic: str, *groups: str
) -> AsyncIterator[tuple[SharedFeed, list[Department]]]:
    """A feed and a department per group, each department's handler open."""
    stop = asyncio.Event()
    feed = SharedFeed(settings, topic)
    await feed.start()
    departments = [
        Department(FedMember(settings, feed, name=group, group=group)) for group in groups
    ]
    for department in departments:
        department.gate.set()
        await department.member.start()
    tasks = [asyncio.create_task(feed.run(stop))]
    tasks += [asyncio.create_task(d.run(stop)) for d in departments]
    try:
        yield feed, departments
    finally:
        stop.set()
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for department in departments:
            await department.member.stop()


def _every(count: int) -> list[tuple[int, int]]:
    """(partition, offset) of `count` records published round robin from an empty topic."""
    return sorted((n % PARTITIONS, n // PARTITIONS) for n in range(count))


async def test_a_department_behind_reads_alone_then_the_feed_serves_it(
    feed_settings: Settings, topic: str
) -> None:
    bootstrap = feed_settings.kafka_bootstrap or ""
    await _publish(bootstrap, topic, 30)  # before the feed: the departments' own to read
    async with _hosting(feed_settings, topic, "dept-a", "dept-b") as (feed, departments):

        async def level() -> bool:
            return all(d.member.fed and len(d.taken) == 30 for d in departments)

        await eventually(level, what="both read the backlog alone and joined the feed")
        await _publish(bootstrap, topic, 30)

        async def all_taken() -> bool:
            return all(len(d.taken) >= 60 for d in departments)

        await eventually(all_taken, what="the feed serving both")
        assert all(d.member.fed for d in departments)  # served by the one fetch
        assert feed.next == {p: 20 for p in range(PARTITIONS)}
    for department in departments:
        assert sorted(department.taken) == _every(60)  # each once, none lost
        committed = await _committed(bootstrap, topic, department.member.name)
        assert committed == {p: 20 for p in range(PARTITIONS)}


async def test_a_department_that_falls_behind_reads_alone_and_catches_up(
    feed_settings: Settings, topic: str
) -> None:
    bootstrap = feed_settings.kafka_bootstrap or ""
    async with _hosting(feed_settings, topic, "dept-fast", "dept-stuck") as (feed, departments):
        fast, stuck = departments
        await _served_by_the_feed(departments)
        stuck.gate.clear()  # its batches pile up while its handler waits
        count = QUEUED_BATCHES + 4
        await _one_batch_each(bootstrap, topic, feed, count)

        async def detached() -> bool:
            return not stuck.member.fed

        await eventually(detached, what="the stuck department set to read alone")
        assert sorted(fast.taken) == sorted((0, n) for n in range(count))  # the other went on
        stuck.gate.set()

        async def caught_up() -> bool:
            return len(stuck.taken) >= count and stuck.member.fed

        await eventually(caught_up, what="the stuck department caught up and rejoined")
    assert sorted(stuck.taken) == sorted(fast.taken)  # nothing lost, nothing twice
    assert await _committed(bootstrap, topic, "dept-stuck") == {0: count, 1: 0, 2: 0}


async def test_batches_queued_while_a_department_stores_one_are_taken_as_one(
    feed_settings: Settings, topic: str
) -> None:
    """A department slower than the stream pays one transaction for what queued meanwhile,
    so falling behind makes its batches larger rather than its backlog longer."""
    bootstrap = feed_settings.kafka_bootstrap or ""
    async with _hosting(feed_settings, topic, "dept-quick", "dept-slow") as (feed, departments):
        quick, slow = departments
        await _served_by_the_feed(departments)
        slow.gate.clear()  # it takes the first record, then waits to store it
        count = 4
        await _one_batch_each(bootstrap, topic, feed, count)
        slow.gate.set()

        async def both_took_all() -> bool:
            return len(quick.taken) == count and len(slow.taken) == count

        await eventually(both_took_all, what="both departments took every record")
    assert quick.batches == [1] * count
    assert slow.batches == [1, count - 1]  # the three that queued, in one batch
    assert sorted(slow.taken) == sorted(quick.taken)


async def test_records_a_department_read_alone_are_not_taken_again_from_the_feed(
    feed_settings: Settings, topic: str
) -> None:
    bootstrap = feed_settings.kafka_bootstrap or ""
    await _publish(bootstrap, topic, 6)
    feed = SharedFeed(feed_settings, topic)
    await feed.start()  # its next records: offset 2 of each partition
    await _publish(bootstrap, topic, 6)  # the feed has not fetched these yet
    ahead = Department(FedMember(feed_settings, feed, name="dept-ahead", group="dept-ahead"))
    ahead.gate.set()
    await ahead.member.start()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(ahead.run(stop))]
    try:

        async def joined() -> bool:
            return ahead.member.fed and len(ahead.taken) == 12

        await eventually(joined, what="read alone past the feed, then joined it")
        tasks.append(asyncio.create_task(feed.run(stop)))  # hands out records 6-11 again

        async def fed_on() -> bool:
            return feed.next == {p: 4 for p in range(PARTITIONS)}

        await eventually(fed_on, what="the feed past what the department had read")
        await _publish(bootstrap, topic, 3)

        async def more() -> bool:
            return len(ahead.taken) >= 15

        await eventually(more, what="the next records from the feed")
    finally:
        stop.set()
        if len(tasks) == 1:
            await feed.run(stop)  # never fetched: only closes its client
        await asyncio.gather(*tasks)
        await ahead.member.stop()
    assert sorted(ahead.taken) == _every(15)
