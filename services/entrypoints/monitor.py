"""The monitor: `python -m services.entrypoints.monitor`.

Every few seconds it reads the bus as a whole (consumer lag per group, outbox backlogs,
active blocks per measure, answers pending and overdue, cases by township) from the
broker and the databases, and serves the figures on its /metrics. One monitor per
deployment; it only reads.
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import REGISTRY

from events.catalogue import load_catalogue
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.adapters.bus_reader import KafkaLagReader, PostgresBusReader
from services.adapters.postgres import create_pool
from services.config import Settings, load_settings
from services.errors import BrokerError, DatabaseError
from services.metrics import BusCollector, BusSnapshot, start_metrics_server
from services.runtime.service import retrying, serve, wait_set

log = logging.getLogger("redline.monitor")


def consumer_groups() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each consumer, by its metrics label, with its group id and topics."""
    groups = {
        "feedback_tracker": ("redline-feedback", (VIOLATIONS.name, ACKNOWLEDGEMENTS.name)),
        "blocklist_builder": ("redline-blocklist", (VIOLATIONS.name,)),
    }
    for code in load_catalogue().codes:
        groups[code] = (f"redline-department-{code}", (VIOLATIONS.name,))
    return groups


# Prometheus scrapes every 15 s (deploy/prometheus/prometheus.yml): reading the bus more
# often changes no figure anyone sees, and each read asks the broker for every group's
# committed offset of every partition (#19: a fifth of the broker's requests at rest).
READ_EVERY_SECONDS = 15.0


async def run_monitor(
    settings: Settings,
    stop: asyncio.Event,
    collector: BusCollector,
    *,
    every: float = READ_EVERY_SECONDS,
) -> None:
    kafka, database = settings.require()
    pool = await retrying(stop, lambda: create_pool(database, max_size=2), what="monitor")
    if pool is None:
        return
    lag = KafkaLagReader(kafka, consumer_groups(), auth=settings.kafka_auth)
    tables = PostgresBusReader(pool)
    catalogue = load_catalogue()
    measures = sorted({m.code for d in catalogue.departments for m in d.measures})
    try:
        while not stop.is_set():
            snapshot = BusSnapshot(read_at=time.time())
            try:
                await tables.read(snapshot)
                snapshot.consumer_lag = await lag.lag()
            except (BrokerError, DatabaseError) as exc:
                log.warning("monitor: %s; keeping the last figures", exc)
            else:
                receivers = sorted({kind.to for kind in catalogue.referrals})
                snapshot.fill_zeros(measures, catalogue.codes, receivers)
                collector.snapshot = snapshot
            await wait_set(stop, every)
    finally:
        await lag.close()
        await pool.close()


def main() -> None:
    settings = load_settings()
    collector = BusCollector()
    REGISTRY.register(collector)
    start_metrics_server(settings)
    serve(lambda stop: run_monitor(settings, stop, collector))


if __name__ == "__main__":
    main()
