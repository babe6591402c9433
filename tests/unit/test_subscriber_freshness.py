"""The freshness rule: the least recently vouched partition decides, silence is stale."""

from __future__ import annotations

import math

import pytest

from connectors.subscriber.freshness import (
    Freshness,
    effective_as_of,
    fresh_until,
    is_stale,
    watermark,
)


def test_the_watermark_is_the_oldest_heartbeat_over_the_partitions() -> None:
    assert watermark({0: 100.0, 1: 90.0, 2: 95.0}, range(3)) == 90.0


def test_a_partition_never_heard_from_means_no_watermark() -> None:
    assert watermark({0: 100.0, 2: 95.0}, range(3)) is None
    assert watermark({0: 100.0, 1: None, 2: 95.0}, range(3)) is None
    assert watermark({}, range(3)) is None


def test_no_partition_vouches_for_nothing() -> None:
    assert watermark({0: 100.0}, []) is None


def test_heartbeats_of_partitions_not_assigned_do_not_count() -> None:
    assert watermark({0: 100.0, 1: 90.0, 7: 1.0}, [0, 1]) == 90.0


@pytest.mark.parametrize(
    ("now", "mark", "stale"),
    [
        (100.0, None, True),
        (100.0, 100.0, False),
        (130.0, 100.0, False),  # exactly the bound: still fresh
        (130.001, 100.0, True),
        (50.0, 100.0, False),  # a clock behind the builder's
    ],
)
def test_stale_without_a_watermark_or_past_the_bound(
    now: float, mark: float | None, stale: bool
) -> None:
    assert is_stale(now, mark, 30.0) is stale
    assert (now > fresh_until(mark, 30.0)) is stale


def test_fresh_until_without_a_watermark_is_never() -> None:
    assert fresh_until(None, 30.0) == -math.inf


def test_a_heartbeat_cannot_vouch_for_a_moment_after_it_arrived() -> None:
    assert effective_as_of(as_of=903.0, received_at=900.0) == 900.0
    assert effective_as_of(as_of=1_000.0, received_at=900.0) is None  # beyond any skew
    assert effective_as_of(as_of=800.0, received_at=900.0) == 800.0


def test_freshness_reports_age_and_verdict() -> None:
    assert Freshness.judge(110.0, 100.0, 30.0) == Freshness(100.0, 10.0, 30.0, False)
    assert Freshness.judge(110.0, None, 30.0) == Freshness(None, None, 30.0, True)
