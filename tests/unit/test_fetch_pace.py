"""The fetch wait follows how long a stream has been quiet (#19): short while records flow,
one fetch per idle wait once it is quiet, back to short at the first record."""

from __future__ import annotations

import inspect

import pytest
from aiokafka.consumer.fetcher import Fetcher as AsyncFetcher
from kafka.consumer.fetcher import Fetcher as SyncFetcher

from events.fetch_pace import FetchPace
from services.config import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_is_a_tenth_of_the_quiet_between_busy_and_idle() -> None:
    clock = Clock()
    pace = FetchPace(100, 1000, clock=clock)
    assert pace.read(3) == 100  # records just came
    clock.now += 0.5
    assert pace.read(0) == 100  # quiet 0.5 s: a tenth is below the busy wait
    clock.now += 2.5
    assert pace.read(0) == 300  # quiet 3 s
    clock.now += 60
    assert pace.read(0) == 1000  # quiet a minute: capped at the idle wait
    assert pace.wait_ms() == 1000


def test_the_first_record_after_a_quiet_spell_brings_the_busy_wait_back() -> None:
    clock = Clock()
    pace = FetchPace(100, 1000, clock=clock)
    clock.now += 3600
    assert pace.read(0) == 1000
    assert pace.read(1) == 100


def test_a_trickle_keeps_the_wait_near_the_busy_one() -> None:
    """A record every 1.7 s: the wait never passes 170 ms, so each lands at most that late."""
    clock = Clock()
    pace = FetchPace(100, 1000, clock=clock)
    waits = []
    for step in range(1, 41):
        clock.now += 0.1
        waits.append(pace.read(1 if step % 17 == 0 else 0))
    assert 150 <= max(waits) <= 170
    assert waits[16] == 100  # the record resets it


def test_an_idle_wait_below_the_busy_one_is_refused() -> None:
    with pytest.raises(ValueError, match="busy_ms <= idle_ms"):
        FetchPace(500, 100)


def test_settings_give_each_loop_a_pace_of_its_own() -> None:
    settings = load_settings({"REDLINE_FETCH_WAIT_MS": "50", "REDLINE_FETCH_WAIT_IDLE_MS": "2000"})
    first, second = settings.fetch_pace(), settings.fetch_pace()
    assert first is not second
    assert (first.busy_ms, first.idle_ms) == (50, 2000)


def test_both_kafka_clients_still_read_the_wait_where_the_pace_sets_it() -> None:
    """The pace sets the wait on each client's fetcher between fetches (neither library
    has a public way): this fails on an upgrade that moves it, before the pace silently
    stops pacing."""
    assert "self._fetch_max_wait_ms" in inspect.getsource(AsyncFetcher._get_actions_per_node)
    assert "self.config['fetch_max_wait_ms']" in inspect.getsource(SyncFetcher)
