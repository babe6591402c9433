"""The publisher fills record batches itself: each event lands on the partition `send()`
would pick for its key (Kafka's murmur2), in outbox order per partition, exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)
from aiokafka.partitioner import murmur2

from events.topics import topic_name_error
from services.adapters.publisher import MAX_RECORD_BYTES, KafkaPublisher
from services.errors import BrokerError
from services.outbox.ports import PendingEvent, Undeliverable

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


# -- Refused for good (#18): named, not retried; transient failures still retried ---------


class RefusingProducer(FakeProducer):
    """Refuses `forbidden` topics when asked for their partitions, and fails the batches
    holding a value in `failing` with that value's error."""

    def __init__(self, capacity: int = 3) -> None:
        super().__init__(capacity)
        self.forbidden: set[str] = set()
        self.failing: dict[bytes, Exception] = {}
        self.asked: list[str] = []

    async def partitions_for(self, topic: str) -> set[int]:
        self.asked.append(topic)
        if topic in self.forbidden:
            raise TopicAuthorizationFailedError(topic)
        return await super().partitions_for(topic)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        errors = [self.failing[v] for _, v in batch.records if v in self.failing]
        if errors:
            delivered.set_exception(errors[0])
        else:
            delivered.set_result(None)
        return delivered


async def test_a_batch_the_broker_refuses_as_too_large_is_named_and_the_rest_delivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = RefusingProducer(capacity=100)
    producer.failing[b"poison"] = MessageSizeTooLargeError()
    events = [PendingEvent(p, TOPIC, "RL-1", b"v") for p in range(1, 4)]
    events.append(PendingEvent(4, TOPIC, "RL-1", b"poison"))
    events.append(PendingEvent(5, TOPIC, "RL-2", b"v", partition=2))
    publisher = _publisher(producer, monkeypatch)
    with pytest.raises(Undeliverable) as refused:
        await publisher.publish(events)
    (refusal,) = refused.value.refusals
    partition_of_rl1 = (murmur2(b"RL-1") & 0x7FFFFFFF) % PARTITIONS
    assert partition_of_rl1 != 2
    assert refusal.positions == (1, 2, 3, 4)  # the batch: which one is at fault is unsaid
    assert refusal.kind == "MessageSizeTooLargeError" and not refusal.each
    assert publisher._producer is producer  # a refusal is no reason to reconnect


async def test_a_topic_not_authorised_refuses_each_of_its_events_and_is_asked_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = RefusingProducer()
    producer.forbidden.add("forbidden")
    events = [PendingEvent(1, "forbidden", "a", b"v"), PendingEvent(2, TOPIC, "b", b"v")]
    events.append(PendingEvent(3, "forbidden", "c", b"v"))
    with pytest.raises(Undeliverable) as refused:
        await _publisher(producer, monkeypatch).publish(events)
    assert [(r.positions, r.kind, r.each) for r in refused.value.refusals] == [
        ((1,), "TopicAuthorizationFailedError", True),
        ((3,), "TopicAuthorizationFailedError", True),
    ]
    assert producer.asked == ["forbidden", TOPIC]
    assert [record for _, _, batch in producer.sent for record in batch.records] == [(b"b", b"v")]


async def test_what_any_broker_refuses_is_refused_before_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An invalid topic name (aiokafka would only log the broker's INVALID_TOPIC and time
    out) and a record over the broker's default message.max.bytes."""
    producer = RefusingProducer()
    events = [
        PendingEvent(1, "no such/topic", "a", b"v"),
        PendingEvent(2, TOPIC, "b", b"x" * MAX_RECORD_BYTES),
        PendingEvent(3, TOPIC, "c", b"x" * (MAX_RECORD_BYTES - 200)),
    ]
    with pytest.raises(Undeliverable) as refused:
        await _publisher(producer, monkeypatch).publish(events)
    assert [(r.positions, r.kind, r.each) for r in refused.value.refusals] == [
        ((1,), "InvalidTopicError", True),
        ((2,), "MessageSizeTooLargeError", True),
    ]
    assert "not a valid topic name" in refused.value.refusals[0].reason
    assert producer.asked == [TOPIC]
    assert [len(batch.records) for _, _, batch in producer.sent] == [1]  # event 3 went


async def test_a_transient_failure_beside_a_refusal_is_retried_as_a_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = RefusingProducer()
    producer.failing[b"poison"] = MessageSizeTooLargeError()
    producer.failing[b"unlucky"] = NotLeaderForPartitionError()
    events = [
        PendingEvent(1, TOPIC, "a", b"poison", partition=0),
        PendingEvent(2, TOPIC, "b", b"unlucky", partition=1),
    ]
    publisher = _publisher(producer, monkeypatch)
    with pytest.raises(BrokerError) as failed:
        await publisher.publish(events)
    assert not isinstance(failed.value, Undeliverable)
    assert publisher._producer is None


@pytest.mark.parametrize(
    ("topic", "valid"),
    [
        ("redline.violations.v1", True),
        ("a" * 249, True),
        ("a" * 250, False),
        ("", False),
        (".", False),
        ("..", False),
        ("bad topic!", False),
        ("a/b", False),
    ],
)
def test_topic_names_follow_kafkas_rule(topic: str, valid: bool) -> None:
    assert (topic_name_error(topic) is None) is valid


async def test_a_prepared_window_sends_the_batches_publish_would_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The relay fills the next window's batches while one is in flight: sent later, they
    are the batches `publish` sends, in the same order; nothing goes out before."""
    events = [PendingEvent(p, TOPIC, f"RL-{p % 5}", f"v{p}".encode()) for p in range(20)]
    direct = FakeProducer(capacity=3)
    await _publisher(direct, monkeypatch).publish(events)

    ahead = FakeProducer(capacity=3)
    publisher = _publisher(ahead, monkeypatch)
    publisher._producer = ahead  # as after the window before
    prepared = await publisher.prepare(events)
    assert prepared.work is not None and ahead.sent == []
    await publisher.publish_prepared(prepared)

    def sent(producer: FakeProducer) -> list[tuple[str, int, list[tuple[bytes, bytes | None]]]]:
        return [(topic, partition, batch.records) for topic, partition, batch in producer.sent]

    assert sent(ahead) == sent(direct)


async def test_a_window_prepared_on_a_producer_since_replaced_is_built_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = [PendingEvent(p, TOPIC, f"RL-{p}", b"v") for p in range(4)]
    old, new = FakeProducer(), FakeProducer()
    publisher = _publisher(new, monkeypatch)
    publisher._producer = old
    prepared = await publisher.prepare(events)
    publisher._producer = new  # the old one failed and was closed
    await publisher.publish_prepared(prepared)
    assert old.sent == []
    assert sorted(r for _, _, batch in new.sent for r in batch.records) == sorted(
        (e.key.encode(), e.value) for e in events
    )
