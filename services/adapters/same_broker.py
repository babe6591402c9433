"""Ends a faust worker the moment its broker turns out to be another cluster.

A broker that restarted without its data (the embedded one keeps nothing) holds other logs
under the same offsets. faust remembers, in memory, how far it read each partition and
skips anything below that, and it would commit those old offsets into the new cluster's
group. Neither can be undone from inside, so the worker exits at once, without committing
anything, and its service manager starts it afresh: the effects are in Postgres with their
event ids, so the replayed log is taken again and every event already seen is skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from services.errors import BrokerError

log = logging.getLogger(__name__)

EXIT_BROKER_REPLACED = 75  # EX_TEMPFAIL: start me again


class SameBroker:
    def __init__(self, cluster_id: Callable[[], Awaitable[str]], what: str) -> None:
        self._cluster_id = cluster_id
        self._what = what
        self.first: str | None = None

    async def check(self) -> None:
        """Learn the cluster on the first call; exit on any later call that sees another.
        A broker that cannot be reached says nothing either way."""
        try:
            cluster = await self._cluster_id()
        except BrokerError:
            return
        if self.first is None:
            self.first = cluster
        elif cluster != self.first:
            log.critical(
                "%s: the broker is now cluster %s, not %s; exiting without committing, "
                "to be started again and read the new logs from the stored effects",
                self._what,
                cluster,
                self.first,
            )
            logging.shutdown()
            os._exit(EXIT_BROKER_REPLACED)
