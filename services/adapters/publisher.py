"""Kafka implementation of EventPublisher on aiokafka (acks=all, order kept per key).

A broker's refusal is either transient (network, leader moves, timeouts: sent again
later, as Kafka's own RetriableError says) or permanent for the events it names: the
topic is not writable for this identity or not a valid name, or the record is larger
than the broker takes. Permanent refusals raise Undeliverable naming those events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
    UnsupportedForMessageFormatError,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from events.envelope import kafka_headers
from events.topics import topic_name_error
from services.adapters.kafka import client_options, ensure_topics
from services.config import KafkaAuth
from services.errors import BrokerError
from services.outbox.ports import (
    EventPublisher,
    PendingEvent,
    Prepared,
    Refusal,
    Undeliverable,
)

_PARTITIONER = DefaultPartitioner()  # what AIOKafkaProducer uses unless told otherwise

# A filled record batch: (topic, partition, builder, the positions of its events).
_Batch = tuple[str, int, BatchBuilder, list[int]]


@dataclass(frozen=True)
class _Built:
    """The batches `prepare` filled, valid for the producer that made them."""

    producer: AIOKafkaProducer
    batches: list[_Batch]
    refusals: list[Refusal]


# Refused for every event of the topic, each on its own.
TOPIC_REFUSALS: tuple[type[KafkaError], ...] = (TopicAuthorizationFailedError, InvalidTopicError)
# Refused for a record batch: one or more of its records is at fault.
RECORD_REFUSALS: tuple[type[KafkaError], ...] = (
    MessageSizeTooLargeError,  # the broker's RecordTooLargeException (MESSAGE_TOO_LARGE)
    RecordListTooLargeError,
    CorruptRecordException,
    UnsupportedForMessageFormatError,
)
# The broker's default message.max.bytes (and a topic's max.message.bytes): a larger
# record is refused by Kafka, and by the Java producer before sending (max.request.size).
MAX_RECORD_BYTES = 1_048_588


def _refused(exc: BaseException) -> tuple[str, bool] | None:
    """(Kafka error class, whether each event is refused alone) for a permanent refusal."""
    if isinstance(exc, TOPIC_REFUSALS):
        return type(exc).__name__, True
    if isinstance(exc, RECORD_REFUSALS):
        return type(exc).__name__, False
    return None


class ClusterQuestion:
    """Which cluster the broker is, asked once for everyone waiting (#19).

    Each relay asks before it sends a window, each department before it commits
    offsets: a metadata request the broker answers at ~0.2 ms of its CPU, and aiokafka
    reads at ~0.4 ms of the asker's, the most frequent request of the department host
    at 50 cases/s. The publishers of one process (a host's departments) share one
    question: whoever asks while a request is out gets its answer, which describes the
    broker at most one round trip before the ask (an answer of its own is as old by the
    time it is acted on); a later ask is a new request. Each publisher still asks
    through its own client, under its own login."""

    def __init__(self) -> None:
        self._answer: asyncio.Future[str] | None = None

    async def ask(self, request: Callable[[], Awaitable[str]]) -> str:
        if self._answer is None or self._answer.done():
            self._answer = asyncio.ensure_future(request())
            # Retrieved here too, so an answer everyone stopped waiting for logs nothing.
            self._answer.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(self._answer)


class KafkaPublisher(EventPublisher):
    def __init__(
        self,
        bootstrap: str,
        *,
        replication_factor: int = 1,
        auth: KafkaAuth | None = None,
        question: ClusterQuestion | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.replication_factor = replication_factor
        self.auth = auth
        self.question = question or ClusterQuestion()
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._producer_cluster: str | None = None  # the cluster its metadata describes
        self._last_cluster: str | None = None

    async def cluster_id(self) -> str:
        try:
            cluster = await self.question.ask(self._describe_cluster)
        except BrokerError:
            await self.close()
            raise
        if self._producer is not None and cluster != self._producer_cluster:
            # Its metadata describes a broker that is gone; a new producer asks afresh.
            await self._close_producer()
        self._last_cluster = cluster
        return cluster

    async def _describe_cluster(self) -> str:
        try:
            if self._admin is None:
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self.bootstrap,
                    request_timeout_ms=5000,
                    **client_options(self.auth),
                )
                await admin.start()
                self._admin = admin
            described = await self._admin.describe_cluster()
        except KafkaError as exc:
            raise BrokerError(f"cannot reach the broker at {self.bootstrap}: {exc!r}") from exc
        cluster: str = described["cluster_id"]
        return cluster

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            # A broker that lost its memory comes back without topics: create them again.
            await ensure_topics(
                self.bootstrap,
                replication_factor=self.replication_factor,
                auth=self.auth,
                check_existing=False,
            )
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                linger_ms=2,
                max_batch_size=1024 * 1024,
                request_timeout_ms=15_000,
                **client_options(self.auth),
            )
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                raise BrokerError(f"cannot reach the broker at {self.bootstrap}: {exc!r}") from exc
            self._producer = producer
            self._producer_cluster = self._last_cluster
        return self._producer

    async def publish(self, events: Sequence[PendingEvent]) -> None:
        """Fill one record batch per partition and send each when full, awaiting one
        future per batch: `send()` per event costs several times the Python work.

        Partitions are chosen exactly as `send()` chooses them (the producer's default
        partitioner over the topic's partitions), so a key keeps its partition; each
        partition's batches go in event order, so order per key holds.

        Events refused for good are not sent, or their batch fails: all the others are
        awaited, then Undeliverable names the refused ones. A transient failure anywhere
        raises a plain BrokerError instead (the whole call is tried again).
        """
        producer = await self._ready_producer()
        refusals: list[Refusal] = []
        try:
            batches = await self._build_batches(producer, events, refusals)
        except (KafkaError, AssertionError, TypeError) as exc:
            await self.close()
            raise BrokerError(f"publishing to {self.bootstrap} failed: {exc!r}") from exc
        await self._send_built(producer, batches, refusals)

    async def prepare(self, events: Sequence[PendingEvent]) -> Prepared:
        """Fill the record batches of `events` now, while the window before is with the
        broker (most of a publish's Python work: partitioning, headers, appending); they
        are sent by `publish_prepared`, in order, after it. With no producer yet, or if
        anything fails here, nothing is done ahead: `publish_prepared` does it all."""
        producer = self._producer
        if producer is None:
            return Prepared(events)
        refusals: list[Refusal] = []
        try:
            batches = await self._build_batches(producer, events, refusals)
        except (KafkaError, AssertionError, TypeError, BrokerError):
            return Prepared(events)
        return Prepared(events, _Built(producer, batches, refusals))

    async def publish_prepared(self, prepared: Prepared) -> None:
        built = prepared.work
        if not isinstance(built, _Built) or built.producer is not self._producer:
            # Prepared by a producer since discarded: build again on the new one.
            await self.publish(prepared.events)
            return
        await self._send_built(built.producer, built.batches, list(built.refusals))

    async def _send_built(
        self, producer: AIOKafkaProducer, batches: list[_Batch], refusals: list[Refusal]
    ) -> None:
        """Send the batches in order, await all, then raise what failed (see publish)."""
        try:
            deliveries = [
                (positions, await producer.send_batch(builder, topic, partition=partition))
                for topic, partition, builder, positions in batches
            ]
            outcomes = await asyncio.gather(
                *(delivery for _, delivery in deliveries), return_exceptions=True
            )
        except (KafkaError, AssertionError, TypeError) as exc:
            # Start afresh next time: new connections, topics checked again. (send_batch
            # asserts the partition against metadata refreshed meanwhile: a topic created
            # again with fewer partitions gives AssertionError or TypeError, not KafkaError.)
            await self.close()
            raise BrokerError(f"publishing to {self.bootstrap} failed: {exc!r}") from exc
        transient: BaseException | None = None
        for (positions, _), outcome in zip(deliveries, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                refused = _refused(outcome)
                if refused is None:
                    transient = outcome
                else:
                    kind, each = refused
                    refusals.append(Refusal(tuple(positions), kind, repr(outcome), each))
        if transient is not None:
            await self.close()
            raise BrokerError(
                f"publishing to {self.bootstrap} failed: {transient!r}"
            ) from transient
        if refusals:
            raise Undeliverable(refusals)

    async def _build_batches(
        self, producer: AIOKafkaProducer, events: Sequence[PendingEvent], refusals: list[Refusal]
    ) -> list[_Batch]:
        """Fill record batches with every event not refused before sending, in the order
        they are to be sent: each partition's batches in event order."""
        batches: list[_Batch] = []
        open_batches: dict[tuple[str, int], tuple[BatchBuilder, list[int]]] = {}
        partitions: dict[str, list[int] | tuple[str, str]] = {}  # or why the topic is refused
        for event in events:
            key = event.key.encode()
            headers = kafka_headers(event.value)  # CloudEvents structured mode
            partition = await self._partition(producer, event, key, headers, partitions)
            if isinstance(partition, tuple):
                refusals.append(Refusal((event.position,), *partition, each=True))
                continue
            builder, positions = open_batches.get((event.topic, partition)) or (None, [])
            if builder is None:
                builder = producer.create_batch()
                open_batches[event.topic, partition] = builder, positions
            if builder.append(key=key, value=event.value, timestamp=None, headers=headers) is None:
                batches.append((event.topic, partition, builder, positions))
                builder, positions = producer.create_batch(), []
                open_batches[event.topic, partition] = builder, positions
                if (
                    builder.append(key=key, value=event.value, timestamp=None, headers=headers)
                    is None
                ):
                    raise BrokerError(f"event {event.position} is larger than a batch")
            positions.append(event.position)
        batches.extend(
            (topic, partition, builder, positions)
            for (topic, partition), (builder, positions) in open_batches.items()
            if positions
        )
        return batches

    async def _partition(
        self,
        producer: AIOKafkaProducer,
        event: PendingEvent,
        key: bytes,
        headers: list[tuple[str, bytes]],
        partitions: dict[str, list[int] | tuple[str, str]],
    ) -> int | tuple[str, str]:
        """The event's partition, or (Kafka error class, reason) when it is refused."""
        every = partitions.get(event.topic)
        if every is None:
            every = partitions[event.topic] = await self._topic(producer, event.topic)
        if isinstance(every, tuple):
            return every  # its topic is refused
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, event.value, [*headers])
        if size > MAX_RECORD_BYTES:
            return MessageSizeTooLargeError.__name__, (
                f"MessageSizeTooLargeError: the record is {size} bytes, more than the "
                f"{MAX_RECORD_BYTES} a Kafka broker takes by default (message.max.bytes)"
            )
        if event.partition is not None:
            return event.partition
        return int(_PARTITIONER(key, every, every))

    @staticmethod
    async def _topic(producer: AIOKafkaProducer, topic: str) -> list[int] | tuple[str, str]:
        """The topic's partitions, or (Kafka error class, reason) when it is refused."""
        problem = topic_name_error(topic)
        if problem is not None:
            return InvalidTopicError.__name__, f"InvalidTopicError: {problem}"
        try:
            return list(await producer.partitions_for(topic))
        except TOPIC_REFUSALS as exc:
            return type(exc).__name__, repr(exc)

    async def close(self) -> None:
        await self._close_producer()
        if self._admin is not None:
            admin, self._admin = self._admin, None
            with contextlib.suppress(KafkaError):
                await admin.close()

    async def _close_producer(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            # it is being discarded because the broker already failed
            with contextlib.suppress(KafkaError):
                await producer.stop()
