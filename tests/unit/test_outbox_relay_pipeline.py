"""The relay's batches, against an outbox and a broker held in memory: marked only after
the broker acknowledged them, in outbox order, and nothing skipped on failure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from prometheus_client import REGISTRY

from services.errors import BrokerError, DatabaseError
from services.outbox import relay as relay_module
from services.outbox.ports import (
    PendingEvent,
    Refusal,
    Undeliverable,
)
from services.outbox.relay import OutboxRelay
from tests.fakes.outbox import TOPIC, MemoryBroker, MemoryOutbox


def _relay(count: int, batch_size: int = 10) -> tuple[OutboxRelay, MemoryOutbox, MemoryBroker]:
    log: list[tuple[str, int]] = []
    outbox, broker = MemoryOutbox(count, log), MemoryBroker(log)
    return OutboxRelay(outbox, broker, batch_size=batch_size), outbox, broker


async def test_batches_go_out_in_outbox_order_and_are_marked_only_once_acknowledged() -> None:
    relay, outbox, broker = _relay(95)
    assert await relay.publish_pending(max_batches=4) == 40
    assert await relay.publish_pending() == 55
    assert await relay.publish_pending() == 0
    assert broker.published == list(range(1, 96))
    assert outbox.sent == set(range(1, 96))
    assert relay.published == 95
    marks = [p for what, p in outbox.log if what == "marked"]
    assert len(marks) == 10
    assert all(
        outbox.log.index(("acknowledged", p)) < outbox.log.index(("marked", p)) for p in marks
    )


class CountingBroker(MemoryBroker):
    """Counts how often the relay asks which cluster the broker is."""

    asked = 0

    async def cluster_id(self) -> str:
        self.asked += 1
        return await super().cluster_id()


async def test_an_idle_relay_asks_the_broker_its_cluster_only_now_and_then(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[tuple[str, int]] = []
    outbox, broker = MemoryOutbox(5, log), CountingBroker(log)
    relay = OutboxRelay(outbox, broker, batch_size=10)
    assert await relay.publish_pending() == 5
    asked = broker.asked
    for _ in range(3):
        assert await relay.publish_pending() == 0
    assert broker.asked == asked  # idle: a look at the outbox only
    outbox.rows[6] = PendingEvent(6, TOPIC, "key-6", b"v")
    assert await relay.publish_pending() == 1
    assert broker.asked > asked  # asked again before anything is sent
    monkeypatch.setattr(relay_module, "CLUSTER_RECHECK_S", 0.0)
    broker.cluster = "cluster-b"  # the broker came back empty while the relay idled
    assert await relay.publish_pending() == 6  # seen at the next check: everything again
    assert broker.published == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]


async def test_a_busy_relay_asks_once_a_call_and_sees_a_broker_replaced_after_its_last_window() -> (
    None
):
    """One question per wake-up, before anything is sent: the broker replaced while it
    took the last window is seen at the next call, which publishes everything again."""
    log: list[tuple[str, int]] = []
    outbox, broker = MemoryOutbox(5, log), CountingBroker(log)
    relay = OutboxRelay(outbox, broker, batch_size=10)
    assert await relay.publish_pending() == 5
    assert broker.asked == 1
    outbox.rows[6] = PendingEvent(6, TOPIC, "key-6", b"v")
    broker.replaced_at = 6
    assert await relay.publish_pending() == 1
    assert broker.asked == 2
    outbox.rows[7] = PendingEvent(7, TOPIC, "key-7", b"v")
    assert await relay.publish_pending() == 7  # the replaced broker is given everything
    assert broker.asked == 3
    assert broker.published == [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 7]


async def test_a_refused_batch_stops_the_pipeline_and_earlier_ones_stay_marked() -> None:
    relay, outbox, broker = _relay(60)
    broker.fail_at = 35
    with pytest.raises(BrokerError):
        await relay.publish_pending()
    assert outbox.sent == set(range(1, 31))  # acknowledged batches were still marked
    broker.fail_at = None
    assert await relay.publish_pending() == 30
    assert outbox.sent == set(range(1, 61))
    assert broker.published == list(range(1, 61))


async def test_a_failed_mark_is_raised_and_its_batch_is_published_again() -> None:
    relay, outbox, broker = _relay(40)
    outbox.fail_mark = 15
    with pytest.raises(DatabaseError):
        await relay.publish_pending()
    assert 15 not in outbox.sent
    outbox.fail_mark = None
    await relay.publish_pending()
    assert outbox.sent == set(range(1, 41))
    assert broker.published.count(15) == 2  # at least once, never lost


async def test_a_broker_replaced_while_publishing_leaves_that_batch_unmarked() -> None:
    relay, outbox, broker = _relay(50)
    broker.replaced_at = 25
    with pytest.raises(BrokerError, match="changed while publishing"):
        await relay.publish_pending()
    assert outbox.sent == set(range(1, 21))
    assert max(broker.published) == 30  # nothing after the replaced broker's batch


async def test_a_relay_that_lost_the_lead_stops_after_the_batch_in_flight() -> None:
    relay, outbox, broker = _relay(50)
    outbox.leads = 2  # the call's own check and the one before its second batch
    assert await relay.publish_pending() == 20
    assert broker.published == list(range(1, 21))
    assert outbox.sent == set(range(1, 21))
    assert await relay.publish_pending() == 0  # standing by


async def test_an_event_that_commits_late_under_a_lower_position_goes_before_its_keys_next() -> (
    None
):
    """A position is taken before its transaction commits: the next event of the same key
    (which waits for that commit, the case row being locked) must still follow it."""
    relay, outbox, broker = _relay(25)
    outbox.uncommitted = {3}
    outbox.after_first_read = [PendingEvent(26, TOPIC, outbox.rows[3].key, b"v")]

    assert await relay.publish_pending() == 26

    assert broker.published.index(3) < broker.published.index(26)
    assert sorted(broker.published) == list(range(1, 27))


# -- Pipelining (#19): the next window is read while one is with the broker ---------------


class ReadLoggingOutbox(MemoryOutbox):
    """Also keeps every read's positions, and can hold one window's mark back."""

    def __init__(self, count: int, log: list[tuple[str, int]]) -> None:
        super().__init__(count, log)
        self.read_log: list[list[int]] = []
        self.slow_mark: int | None = None  # a position whose window's mark lags far behind

    async def pending(self, limit: int) -> list[PendingEvent]:
        found = await super().pending(limit)
        self.read_log.append([event.position for event in found])
        return found

    async def mark_sent(self, positions: Sequence[int]) -> None:
        if self.slow_mark in positions:
            for _ in range(500):  # long enough for the next window's whole send
                await asyncio.sleep(0)
        await super().mark_sent(positions)

    def was_read(self, position: int) -> bool:
        return any(position in read for read in self.read_log)


class StallingBroker(MemoryBroker):
    """Refuses the window holding `fail_after_read`, but only once the outbox has read
    `read_first` (the next window) meanwhile, or after a long wait if it never does."""

    def __init__(self, log: list[tuple[str, int]], outbox: ReadLoggingOutbox) -> None:
        super().__init__(log)
        self.outbox = outbox
        self.fail_after_read: int | None = None
        self.read_first = 0
        self.read_before_failing = False

    async def publish(self, events: Sequence[PendingEvent]) -> None:
        if self.fail_after_read in {event.position for event in events}:
            for _ in range(1000):
                if self.outbox.was_read(self.read_first):
                    break
                await asyncio.sleep(0)
            self.read_before_failing = self.outbox.was_read(self.read_first)
            raise BrokerError("the broker went away")
        await super().publish(events)


def _stalling(count: int) -> tuple[OutboxRelay, ReadLoggingOutbox, StallingBroker]:
    log: list[tuple[str, int]] = []
    outbox = ReadLoggingOutbox(count, log)
    broker = StallingBroker(log, outbox)
    return OutboxRelay(outbox, broker, batch_size=10), outbox, broker


def _marks(log: list[tuple[str, int]]) -> list[int]:
    return [position for what, position in log if what == "marked"]


async def test_a_window_that_fails_after_the_next_was_read_keeps_order_and_loses_nothing() -> None:
    relay, outbox, broker = _stalling(60)
    broker.fail_after_read, broker.read_first = 25, 35  # window 21-30 fails, 31-40 read

    with pytest.raises(BrokerError):
        await relay.publish_pending()

    assert broker.read_before_failing, "the next window was not read while one was in flight"
    assert outbox.sent == set(range(1, 21))  # the windows acknowledged before stay marked
    assert broker.published == list(range(1, 21))  # the window read ahead was never sent
    assert _marks(outbox.log) == [10, 20]

    broker.fail_after_read = None
    assert await relay.publish_pending() == 40
    assert broker.published == list(range(1, 61))  # in outbox order, the failed one first
    assert outbox.sent == set(range(1, 61))
    assert _marks(outbox.log) == [10, 20, 30, 40, 50, 60]


async def test_a_window_is_marked_only_after_the_one_before_it_even_when_that_mark_lags() -> None:
    relay, outbox, broker = _stalling(50)
    outbox.slow_mark = 15  # window 11-20 is marked long after 21-30 was acknowledged

    assert await relay.publish_pending() == 50

    assert _marks(outbox.log) == [10, 20, 30, 40, 50]
    assert outbox.log.index(("acknowledged", 30)) < outbox.log.index(("marked", 20))
    assert broker.published == list(range(1, 51))


async def test_when_a_mark_fails_the_window_acknowledged_after_it_stays_unmarked() -> None:
    relay, outbox, broker = _stalling(50)
    outbox.fail_mark = 15

    with pytest.raises(DatabaseError):
        await relay.publish_pending()

    assert ("acknowledged", 30) in outbox.log  # sent while the failing mark was under way
    assert outbox.sent == set(range(1, 11))  # but neither it nor 11-20 is marked
    outbox.fail_mark = None
    assert await relay.publish_pending() == 40
    assert outbox.sent == set(range(1, 51))
    # At least once, in order: what follows the failure starts again at the unmarked window.
    assert broker.published == [*range(1, 31), *range(11, 51)]


# -- Quarantine (#18): an event refused for good is set aside, the rest goes on ----------


class RefusingBroker(MemoryBroker):
    """Refuses for good: every event of `refused_topic` on its own, and any call holding a
    `poison` position as a whole record batch (which event is at fault is not said)."""

    def __init__(self, log: list[tuple[str, int]]) -> None:
        super().__init__(log)
        self.poison: set[int] = set()
        self.refused_topic: str | None = None
        self.calls = 0

    async def publish(self, events: Sequence[PendingEvent]) -> None:
        self.calls += 1
        refusals = []
        topic = [e.position for e in events if e.topic == self.refused_topic]
        if topic:
            refusals.append(Refusal(tuple(topic), "TopicAuthorizationFailedError", "no", True))
        rest = [e for e in events if e.topic != self.refused_topic]
        if self.poison & {e.position for e in rest}:
            positions = tuple(e.position for e in rest)
            refusals.append(Refusal(positions, "MessageSizeTooLargeError", "too big", False))
        if refusals:
            # As the publisher does: every event no refusal names was acknowledged.
            named = {p for refusal in refusals for p in refusal.positions}
            self.published.extend(e.position for e in events if e.position not in named)
            raise Undeliverable(refusals)
        await super().publish(events)


def _refusing(count: int, batch_size: int = 10) -> tuple[OutboxRelay, MemoryOutbox, RefusingBroker]:
    log: list[tuple[str, int]] = []
    outbox, broker = MemoryOutbox(count, log), RefusingBroker(log)
    return OutboxRelay(outbox, broker, batch_size=batch_size, name="test"), outbox, broker


async def test_a_poison_event_in_a_refused_batch_is_found_set_aside_and_the_rest_delivered() -> (
    None
):
    relay, outbox, broker = _refusing(40)
    broker.poison = {13, 27}
    assert await relay.publish_pending() == 38
    assert outbox.aside == {13: "too big", 27: "too big"}
    assert outbox.sent == set(range(1, 41)) - {13, 27}
    assert sorted(set(broker.published)) == sorted(outbox.sent)
    assert broker.published.count(12) == 1  # a half delivered while isolating is marked
    assert relay.quarantined == 2
    # Later events of the poison's key went on (key-6: 13, 20, 27, 34): kept and flagged.
    assert {20, 34} <= outbox.sent
    assert quarantined_gauge("test") == 2


async def test_every_event_of_a_topic_refused_for_good_is_set_aside_in_one_round() -> None:
    relay, outbox, broker = _refusing(30)
    for p in (4, 5, 17):
        outbox.rows[p] = PendingEvent(p, "forbidden", f"key-{p}", b"v")
    broker.refused_topic = "forbidden"
    assert await relay.publish_pending() == 27
    assert set(outbox.aside) == {4, 5, 17}
    # One call per window: a topic's refusal names each of its events, and the others of
    # the call were acknowledged, so nothing is sent again to find out.
    assert broker.calls == 3
    assert outbox.sent == set(range(1, 31)) - {4, 5, 17}


async def test_a_transient_refusal_is_still_retried_and_nothing_is_set_aside() -> None:
    relay, outbox, broker = _relay(20)
    broker.fail_at = 5
    with pytest.raises(BrokerError):
        await relay.publish_pending()
    assert outbox.aside == {} and outbox.sent == set()


async def test_a_batch_refusal_no_single_event_reproduces_sets_nothing_aside() -> None:
    """A batch refused as a whole whose events each go through alone held no poison
    event (a topic's batch limit below the producer's, say): all of it is delivered."""
    relay, outbox, broker = _refusing(4)
    calls: list[int] = []

    async def refuse_batches_of_more_than_one(events: Sequence[PendingEvent]) -> None:
        calls.append(len(events))
        if len(events) > 1:
            positions = tuple(e.position for e in events)
            raise Undeliverable([Refusal(positions, "RecordListTooLargeError", "big", False)])

    broker.publish = refuse_batches_of_more_than_one  # type: ignore[method-assign]
    assert await relay.publish_pending() == 4
    assert outbox.aside == {} and outbox.sent == {1, 2, 3, 4}
    assert calls == [4, 2, 1, 1, 2, 1, 1]


def quarantined_gauge(outbox: str) -> float:
    value = REGISTRY.get_sample_value("redline_outbox_quarantined_events", {"outbox": outbox})
    return -1.0 if value is None else value
