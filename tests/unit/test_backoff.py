"""One backoff for every retry loop: the services' and the subscriber connector's."""

from __future__ import annotations

import random

import pytest

from connectors.subscriber import backoff as connector_backoff
from events.backoff import Backoff


def test_delays_double_up_to_the_cap_and_reset_starts_again() -> None:
    backoff = Backoff(1.0, 30.0, jitter=0)
    assert [backoff.next() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    backoff.reset()
    assert backoff.next() == 1.0


def test_jitter_adds_at_most_its_share_and_spreads_a_fleet() -> None:
    rng = random.Random(7)
    delays = [Backoff(0.5, 30.0, rng=rng).next() for _ in range(50)]
    assert all(0.5 <= delay <= 0.5 * 1.2 for delay in delays)
    assert len(set(delays)) > 1  # not all in step


def test_it_keeps_capping_after_many_failures() -> None:
    backoff = Backoff(0.1, 5.0, jitter=0)
    assert max(backoff.next() for _ in range(1000)) == 5.0


@pytest.mark.parametrize(
    ("first", "cap", "jitter"), [(0.0, 1.0, 0.2), (2.0, 1.0, 0.2), (0.1, 1.0, -0.1)]
)
def test_a_backoff_that_cannot_work_is_refused(first: float, cap: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(first, cap, jitter=jitter)


def test_the_connector_uses_the_same_backoff() -> None:
    assert connector_backoff.Backoff is Backoff
