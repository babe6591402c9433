"""Exponential backoff with jitter, so a fleet of subscribers does not hammer a broker or
a webhook receiver in step when it comes back. Pure: the caller does the waiting."""

from __future__ import annotations

import random


class Backoff:
    """Delays first, first*2, ... capped at `cap`, each with up to 20% jitter."""

    def __init__(self, first: float = 0.5, cap: float = 30.0, *, rng: random.Random | None = None):
        self._first = first
        self._cap = cap
        self._attempts = 0
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)

    def next(self) -> float:
        delay = min(self._cap, self._first * 2.0**self._attempts)
        self._attempts = min(self._attempts + 1, 32)
        return delay * (1 + 0.2 * self._rng.random())

    def reset(self) -> None:
        self._attempts = 0
