"""The freshness rule: when a replica may answer "clear", and when it must say "stale".

The builder sends a heartbeat per partition while it is caught up; each one vouches that
the partition held, before it, every block the builder knew at `as_of`. A replica is
therefore as fresh as its least recently vouched partition, and one never heard from
vouches for nothing. Pure functions: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_BOUND_SECONDS = 30.0


def watermark(heartbeats: Mapping[int, float | None], partitions: Iterable[int]) -> float | None:
    """The oldest heartbeat (epoch seconds) over `partitions`; None if any is unheard."""
    oldest: float | None = None
    for partition in partitions:
        seen = heartbeats.get(partition)
        if seen is None:
            return None
        if oldest is None or seen < oldest:
            oldest = seen
    return oldest


def is_stale(now: float, mark: float | None, bound: float) -> bool:
    """Stale without a watermark, or when it is older than the bound: never "clear" then."""
    return mark is None or now - mark > bound


def fresh_until(mark: float | None, bound: float) -> float:
    """The moment the rule turns stale, for a hot path that compares one number:
    `now > fresh_until(mark, bound)` is `is_stale(now, mark, bound)`."""
    return -math.inf if mark is None else mark + bound


MAX_CLOCK_SKEW_S = 5.0


def effective_as_of(as_of: float, received_at: float) -> float | None:
    """A heartbeat cannot vouch for a moment after it arrived: a builder whose clock runs
    ahead must not keep a replica looking fresh after it has stopped. One from further
    ahead than a plausible skew vouches for nothing (None): read during a catch-up, an old
    heartbeat would otherwise pass for a new one."""
    if as_of > received_at + MAX_CLOCK_SKEW_S:
        return None
    return min(as_of, received_at)


@dataclass(frozen=True)
class Freshness:
    """What a replica can vouch for now, for one measure or for all it serves."""

    watermark: float | None
    age_seconds: float | None
    bound_seconds: float
    stale: bool

    @classmethod
    def judge(cls, now: float, mark: float | None, bound: float) -> Freshness:
        age = None if mark is None else now - mark
        return cls(mark, age, bound, is_stale(now, mark, bound))
