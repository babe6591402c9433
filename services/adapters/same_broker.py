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
    def __init__(self, first: str, cluster_id: Callable[[], Awaitable[str]], what: str) -> None:
        self.first = first  # learned before the worker's consumer started
        self._cluster_id = cluster_id
        self._what = what

    async def check(self) -> bool:
        """True when the broker is the cluster the worker started on; False when it cannot
        be reached (so a commit must wait); the process ends when it is another cluster."""
        try:
            cluster = await self._cluster_id()
        except BrokerError:
            return False
        if cluster != self.first:
            log.critical(
                "%s: the broker is now cluster %s, not %s; exiting without committing, "
                "to be started again and read the new logs from the stored effects",
                self._what,
                cluster,
                self.first,
            )
            logging.shutdown()
            os._exit(EXIT_BROKER_REPLACED)
        return True
