"""A consumer-group member on aiokafka, the driver of the consumer skeleton for the
feedback tracker, the blocklist builder and the department host: batches in, offsets
committed only after the handler's effect is stored, so a crash re-delivers the batch
instead of skipping it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from events.fetch_pace import FetchPace
from services.adapters.kafka import client_options
from services.config import Settings
from services.consumer import Consumer, OutcomeT
from services.consuming import RawMessage
from services.errors import BrokerError
from services.metrics import prepare_consumer

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
POLL_MS = 200  # the least a batch waits for records before its loop looks round


class PacedFetch:
    """A client's fetches paced by how long its stream has been quiet (events/fetch_pace.py):
    the broker may hold each fetch that long, and the loop waits as long for a batch."""

    def __init__(self, client: AIOKafkaConsumer, pace: FetchPace) -> None:
        self.client = client
        self.pace = pace

    @property
    def poll_ms(self) -> int:
        """How long a batch may wait for records (`getmany` returns as soon as any come)."""
        return max(POLL_MS, self.pace.wait_ms())

    async def batch(self) -> list[RawMessage]:
        fetched = await self.client.getmany(timeout_ms=self.poll_ms, max_records=BATCH_SIZE)
        messages = raw_messages(fetched)
        # aiokafka takes the wait at construction, but its fetcher reads it again for each
        # request it sends: setting it here paces the next one.
        self.client._fetcher._fetch_max_wait_ms = self.pace.read(len(messages))
        return messages


def raw_messages(fetched: Mapping[Any, Sequence[Any]]) -> list[RawMessage]:
    """An aiokafka `getmany` answer as the consumer skeleton's messages."""
    return [
        RawMessage(r.topic, r.partition, r.offset, r.key, r.value)
        for records in fetched.values()
        for r in records
    ]


def consumer_client(settings: Settings, *topics: str, group: str | None) -> AIOKafkaConsumer:
    """An aiokafka consumer that commits only when told, from the start of what its group
    has not read (the feed, with no group, from where it is put)."""
    kafka, _ = settings.require()
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=kafka,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_wait_ms,
        **client_options(settings.kafka_auth),
    )


async def start_client(client: AIOKafkaConsumer, name: str) -> None:
    try:
        await client.start()
    except KafkaError as exc:
        await client.stop()
        raise BrokerError(f"{name} cannot reach the broker: {exc!r}") from exc


async def commit_unless_refused(
    name: str,
    commit: Callable[[], Awaitable[None]],
    before_commit: Callable[[], Awaitable[bool]] | None,
) -> None:
    """Commit a stored batch's offsets, unless `before_commit` says no."""
    try:
        if before_commit is None or await before_commit():
            await commit()
    except KafkaError as exc:
        # The effects and their event ids are stored: whoever reads these partitions next
        # (after a rebalance, a restart, or a broker that came back empty) is handed the
        # batch again and skips it as already taken. Not committing loses nothing.
        log.warning("%s: offsets not committed (%r); they will be re-read", name, exc)


class GroupConsumer:
    def __init__(
        self,
        settings: Settings,
        *,
        name: str,
        group: str,
        topics: Sequence[str],
        before_commit: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """`before_commit`: asked before each commit; False leaves the offsets uncommitted
        (a department host's check that the broker is still the cluster it started on)."""
        self.name = name
        self.topics = tuple(topics)
        self._before_commit = before_commit
        self.kafka = consumer_client(settings, *topics, group=group)
        self._fetch = PacedFetch(self.kafka, settings.fetch_pace())

    async def start(self) -> None:
        await start_client(self.kafka, self.name)
        prepare_consumer(self.name, self.topics)

    async def batch(self) -> list[RawMessage]:
        return await self._fetch.batch()

    async def take(
        self, stop: asyncio.Event, consumer: Consumer[OutcomeT], messages: list[RawMessage]
    ) -> OutcomeT | None:
        """Store the batch's effect through the consumer skeleton (database errors retried
        there), then commit its offsets.

        None when asked to stop first: the batch stays uncommitted, to be seen again."""
        outcome = await consumer.run(stop, messages)
        if outcome is None:
            return None
        await commit_unless_refused(self.name, self.kafka.commit, self._before_commit)
        return outcome

    async def caught_up(self) -> bool:
        """Whether this member holds every partition of its topics and has read each to
        the end the broker last reported."""
        assigned = self.kafka.assignment()
        every = {
            TopicPartition(topic, p)
            for topic in self.topics
            for p in self.kafka.partitions_for_topic(topic) or ()
        }
        if not every or assigned != every:
            return False
        for tp in assigned:
            end = self.kafka.highwater(tp)
            if end is None or await self.kafka.position(tp) < end:
                return False
        return True

    async def stop(self) -> None:
        await self.kafka.stop()
