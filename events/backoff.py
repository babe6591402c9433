"""Exponential backoff with jitter, the one every retry loop uses: the services' database and
broker retries, the supervisor's restarts and the subscriber connector's reconnects (here,
in the package the connector distribution ships too, so the services never import the
connector). Pure: the caller does the waiting, so a fleet does not come back in step."""

from __future__ import annotations

import random


class Backoff:
    """Delays first, first*2, ... capped at `cap`, each with up to `jitter` (20%) added."""

    def __init__(
        self,
        first: float = 0.5,
        cap: float = 30.0,
        *,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"backoff needs 0 < first <= cap, got first={first}, cap={cap}")
        if jitter < 0:
            raise ValueError(f"backoff jitter must not be negative, got {jitter}")
        self._first = first
        self._cap = cap
        self._jitter = jitter
        self._attempts = 0
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)

    def next(self) -> float:
        """The delay before the next attempt; each call doubles it, up to the cap."""
        delay = min(self._cap, self._first * 2.0**self._attempts)
        self._attempts = min(self._attempts + 1, 32)
        return delay * (1 + self._jitter * self._rng.random())

    def reset(self) -> None:
        """After a success: the next failure waits `first` again."""
        self._attempts = 0
