"""How long a consumer's next fetch may wait on the broker: short while records flow, longer
the longer its stream has been quiet (#19).

The embedded broker answers a waiting fetch late (it reads its logs again after sleeping
half the time left), so a record reaches a waiting consumer after a fraction of the wait,
and every consumer polling an idle stream costs the broker and itself a wake-up per wait.
A fixed 100 ms wait paid ten fetches a second per consumer of a stream that may stay
quiet for hours. Here the wait is a tenth of how long the stream has been quiet, between
`busy_ms` and `idle_ms`: a trickle of records keeps it near `busy_ms`, an idle stream is
asked once per `idle_ms`, and the first record after a long quiet is late by a fraction
of `idle_ms`. Pure: the caller passes what it read and sets the wait on its client (here,
in the package the connector distribution ships too, so services and connector share it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

QUIET_SHARE = 0.1  # the wait, as a share of how long the stream has been quiet


class FetchPace:
    def __init__(
        self, busy_ms: int, idle_ms: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0 < busy_ms <= idle_ms:
            raise ValueError(
                f"fetch pace needs 0 < busy_ms <= idle_ms, got busy_ms={busy_ms}, idle_ms={idle_ms}"
            )
        self.busy_ms = busy_ms
        self.idle_ms = idle_ms
        self._clock = clock
        self._last_record = clock()

    def read(self, records: int) -> int:
        """After a fetch that returned `records` (heartbeats and other keep-alives not
        counted): the wait in milliseconds for the next one."""
        if records:
            self._last_record = self._clock()
        return self.wait_ms()

    def wait_ms(self) -> int:
        quiet_ms = (self._clock() - self._last_record) * 1000
        return int(min(self.idle_ms, max(self.busy_ms, quiet_ms * QUIET_SHARE)))
