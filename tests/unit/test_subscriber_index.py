"""The in-memory index: membership, watermark per measure, and the hot tuple checks read."""

from __future__ import annotations

import math

from connectors.subscriber.index import BlockIndex
from connectors.subscriber.results import Clear

POWER, WATER = "refuse_power_supply", "refuse_water_supply"


def _index() -> BlockIndex:
    index = BlockIndex((POWER, WATER), bound=30.0, by_site=(POWER, WATER))
    for measure in (POWER, WATER):
        index.load_heartbeats(measure, {}, range(3))
        index.load_members(measure, set())
    return index


def test_a_measure_is_served_only_once_loaded_and_never_heard_is_stale() -> None:
    index = BlockIndex((POWER,), bound=30.0)
    assert index.serves(POWER) and not index.serves(WATER)
    assert POWER not in index.hot
    index.load_heartbeats(POWER, {}, range(3))
    index.load_members(POWER, set())
    _, deadline, clear, by_site = index.hot[POWER]
    assert deadline == -math.inf
    assert clear == Clear(POWER)
    assert by_site is False  # not named held against sites
    assert index.freshness(0.0, POWER).stale


def test_heartbeats_move_the_watermark_once_every_partition_vouched() -> None:
    index = _index()
    index.vouch(POWER, 0, 100.0)
    index.vouch(POWER, 1, 110.0)
    assert index.watermark(POWER) is None
    index.vouch(POWER, 2, 120.0)
    assert index.watermark(POWER) == 100.0
    assert index.hot[POWER][1] == 130.0
    index.vouch(POWER, 0, 125.0)
    assert index.watermark(POWER) == 110.0
    assert not index.freshness(140.0, POWER).stale
    assert index.freshness(140.5, POWER).stale


def test_the_whole_replica_is_as_fresh_as_its_least_fresh_measure() -> None:
    index = _index()
    for partition in range(3):
        index.vouch(POWER, partition, 100.0)
    assert index.freshness(101.0).watermark is None  # water never heard from
    for partition in range(3):
        index.vouch(WATER, partition, 90.0)
    assert index.freshness(101.0).watermark == 90.0
    assert index.freshness(121.0, POWER).stale is False
    assert index.freshness(121.0).stale is True


def test_members_are_added_and_discarded_in_place() -> None:
    index = _index()
    digest = bytes(32)
    members = index.hot[POWER][0]
    index.add(POWER, digest)
    assert digest in members and index.count(POWER) == 1
    assert digest not in index.hot[WATER][0]
    index.discard(POWER, digest)
    index.discard(POWER, digest)
    assert digest not in members and index.count(POWER) == 0


def test_members_held_elsewhere_are_not_counted() -> None:
    index = BlockIndex((POWER,), bound=30.0)
    index.load_heartbeats(POWER, {}, range(3))
    index.load_members(POWER, frozenset({bytes(32)}))
    assert index.count(POWER) is None
    assert bytes(32) in index.hot[POWER][0]


def test_a_measure_held_against_sites_says_so_and_has_its_elsewhere_answer() -> None:
    index = BlockIndex((POWER, "refuse_loans"), bound=30.0, by_site=(POWER, WATER))
    for measure in (POWER, "refuse_loans"):
        index.load_heartbeats(measure, {}, range(3))
        index.load_members(measure, set())
    assert index.hot[POWER][3] is True and index.by_site(POWER)
    assert index.hot["refuse_loans"][3] is False and not index.by_site("refuse_loans")
    assert not index.by_site(WATER)  # not served here
    assert index.elsewhere(POWER) == Clear(POWER, blocked_elsewhere=True)
    assert index.elsewhere(POWER) is index.elsewhere(POWER)  # made once
