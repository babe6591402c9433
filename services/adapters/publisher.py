"""Kafka implementation of EventPublisher on aiokafka (acks=all, order kept per key)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from events.envelope import kafka_headers
from services.adapters.kafka import client_options, ensure_topics
from services.config import KafkaAuth
from services.errors import BrokerError
from services.outbox.ports import EventPublisher, PendingEvent

_PARTITIONER = DefaultPartitioner()  # what AIOKafkaProducer uses unless told otherwise


class KafkaPublisher(EventPublisher):
    def __init__(
        self, bootstrap: str, *, replication_factor: int = 1, auth: KafkaAuth | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.replication_factor = replication_factor
        self.auth = auth
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._producer_cluster: str | None = None  # the cluster its metadata describes
        self._last_cluster: str | None = None

    async def cluster_id(self) -> str:
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
            await self.close()
            raise BrokerError(f"cannot reach the broker at {self.bootstrap}: {exc!r}") from exc
        cluster: str = described["cluster_id"]
        if self._producer is not None and cluster != self._producer_cluster:
            # Its metadata describes a broker that is gone; a new producer asks afresh.
            await self._close_producer()
        self._last_cluster = cluster
        return cluster

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            # A broker that lost its memory comes back without topics: create them again.
            await ensure_topics(
                self.bootstrap, replication_factor=self.replication_factor, auth=self.auth
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
        """
        producer = await self._ready_producer()
        try:
            deliveries: list[asyncio.Future[object]] = []
            open_batches: dict[tuple[str, int], BatchBuilder] = {}
            partitions: dict[str, list[int]] = {}
            choose = _PARTITIONER
            for event in events:
                key = event.key.encode()
                partition = event.partition
                if partition is None:
                    every = partitions.get(event.topic)
                    if every is None:
                        every = partitions[event.topic] = list(
                            await producer.partitions_for(event.topic)
                        )
                    partition = choose(key, every, every)
                headers = kafka_headers(event.value)  # CloudEvents structured mode
                builder = open_batches.get((event.topic, partition))
                if builder is None:
                    builder = open_batches[event.topic, partition] = producer.create_batch()
                if (
                    builder.append(key=key, value=event.value, timestamp=None, headers=headers)
                    is None
                ):
                    deliveries.append(
                        await producer.send_batch(builder, event.topic, partition=partition)
                    )
                    builder = open_batches[event.topic, partition] = producer.create_batch()
                    if (
                        builder.append(key=key, value=event.value, timestamp=None, headers=headers)
                        is None
                    ):
                        raise BrokerError(f"event {event.position} is larger than a batch")
            for (topic, partition), builder in open_batches.items():
                deliveries.append(await producer.send_batch(builder, topic, partition=partition))
            await asyncio.gather(*deliveries)
        except (KafkaError, AssertionError, TypeError) as exc:
            # Start afresh next time: new connections, topics checked again. (send_batch
            # asserts the partition against metadata refreshed meanwhile: a topic created
            # again with fewer partitions gives AssertionError or TypeError, not KafkaError.)
            await self.close()
            raise BrokerError(f"publishing to {self.bootstrap} failed: {exc!r}") from exc

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
