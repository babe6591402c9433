"""The publisher fills record batches itself: each event lands on the partition `send()`
would pick for its key (Kafka's murmur2), in outbox order per partition, exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.partitioner import murmur2

from services.adapters.publisher import KafkaPublisher
from services.errors import BrokerError
from services.outbox.ports import PendingEvent

TOPIC = "violations"
PARTITIONS = 3


class FakeBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes | None]] = []
        self.headers: list[list[tuple[str, bytes]]] = []

    def append(
        self,
        *,
        key: bytes,
        value: bytes | None,
        timestamp: None,
        headers: list[tuple[str, bytes]],
    ) -> object | None:
        if len(self.records) == self.capacity:
            return None
        self.records.append((key, value))
        self.headers.append(headers)
        return object()


class FakeProducer:
    def __init__(self, capacity: int = 3, fail: bool = False) -> None:
        self.capacity = capacity
        self.fail = fail
        self.sent: list[tuple[str, int, FakeBatch]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            delivered.set_exception(KafkaConnectionError("gone"))
        else:
            delivered.set_result(None)
        return delivered

    async def stop(self) -> None:
        return None


def _publisher(producer: FakeProducer, monkeypatch: pytest.MonkeyPatch) -> KafkaPublisher:
    publisher = KafkaPublisher("127.0.0.1:1")

    async def ready() -> Any:
        publisher._producer = producer
        return producer

    monkeypatch.setattr(publisher, "_ready_producer", ready)
    return publisher


async def test_each_key_keeps_the_partition_send_would_choose_and_its_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = FakeProducer(capacity=3)
    events = [PendingEvent(p, TOPIC, f"RL-{p % 5}", f"v{p}".encode()) for p in range(20)]
    events.append(PendingEvent(20, TOPIC, "RL-0", None, partition=2))  # chosen by the caller
    await _publisher(producer, monkeypatch).publish(events)

    got: dict[int, list[tuple[bytes, bytes | None]]] = {p: [] for p in range(PARTITIONS)}
    for topic, partition, batch in producer.sent:
        assert topic == TOPIC
        assert 0 < len(batch.records) <= producer.capacity
        got[partition].extend(batch.records)
    expected: dict[int, list[tuple[bytes, bytes | None]]] = {p: [] for p in range(PARTITIONS)}
    for event in events:
        key = event.key.encode()
        by_key: int = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
        expected[by_key if event.partition is None else event.partition].append((key, event.value))
    assert got == expected


async def test_a_failed_delivery_is_a_broker_error(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer(fail=True)
    publisher = _publisher(producer, monkeypatch)
    with pytest.raises(BrokerError, match="publishing"):
        await publisher.publish([PendingEvent(1, TOPIC, "RL-1", b"v")])
    assert publisher._producer is None  # the next publish starts afresh


async def test_every_value_carries_the_cloudevents_content_type_and_a_tombstone_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CloudEvents Kafka binding, structured mode: the header names the value's format;
    a tombstone has no value, so no event and no header."""
    producer = FakeProducer(capacity=2)
    events = [PendingEvent(p, TOPIC, f"RL-{p}", f"v{p}".encode()) for p in range(5)]
    events.append(PendingEvent(5, TOPIC, "RL-0", None))
    await _publisher(producer, monkeypatch).publish(events)

    sent = [
        (record, headers)
        for _, _, batch in producer.sent
        for record, headers in zip(batch.records, batch.headers, strict=True)
    ]
    assert len(sent) == len(events)
    for (_, value), headers in sent:
        if value is None:
            assert headers == []
        else:
            assert headers == [("content-type", b"application/cloudevents+json")]
