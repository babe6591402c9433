"""The feedback tracker process: `python -m services.entrypoints.feedback`.

Reads the violation and acknowledgement streams in its own consumer group, commits the
offsets only after the batch is in the database, and every few seconds sends
response.overdue for each answer past its deadline. Its notices and dead letters leave
through its own outbox (schema `feedback`) and a relay in this process, under the
tracker's own Kafka login: the registry's relay may write only the violation stream.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime

from events.authorities import FEEDBACK_TRACKER
from events.catalogue import load_catalogue
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.adapters.feedback_store import MIGRATIONS, SCHEMA
from services.adapters.group_consumer import GroupConsumer
from services.adapters.migrate import migrate
from services.adapters.outbox import PostgresOutbox
from services.adapters.postgres import create_pool
from services.adapters.publisher import KafkaPublisher
from services.bootstrap import load_signer, utc_now
from services.config import Settings, load_settings
from services.consumer import Consumer
from services.consumer.group import consume, relay_outbox
from services.consumer.postgres import ClaimingFeedbackStore
from services.consuming import Issuer
from services.errors import BrokerError
from services.feedback.domain import Answerers
from services.feedback.handlers import CONSUMER, Tracker
from services.metrics import start_metrics_server
from services.runtime.service import retrying, serve

GROUP = "redline-feedback"


async def run_tracker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = utc_now,
    scan_every: float = 5.0,
) -> None:
    kafka, database = settings.require()
    own = functools.partial(migrate, database, package=MIGRATIONS, schema=SCHEMA)
    if await retrying(stop, own, what=CONSUMER) is None:
        return
    pool = await retrying(stop, lambda: create_pool(database, max_size=4), what=CONSUMER)
    if pool is None:
        return
    catalogue = load_catalogue()
    tracker = Tracker(
        catalogue,
        ClaimingFeedbackStore(pool),
        TrustStore.load(settings.trust_store),
        Issuer(load_signer(settings, FEEDBACK_TRACKER), FEEDBACK_TRACKER.source),
        clock,
        answerers=Answerers.of(catalogue, settings.subscribers),
    )
    outbox = PostgresOutbox(pool, database, schema=SCHEMA, channel=f"{SCHEMA}.outbox")
    publisher = KafkaPublisher(
        kafka, replication_factor=settings.kafka_replication_factor, auth=settings.kafka_auth
    )
    consumer = GroupConsumer(
        settings, name=CONSUMER, group=GROUP, topics=[VIOLATIONS.name, ACKNOWLEDGEMENTS.name]
    )
    try:
        await consumer.start()
    except BrokerError:
        await publisher.close()
        await pool.close()
        raise

    async def notify_overdue() -> None:
        if await tracker.notify_overdue():
            outbox.wake()

    async def scan() -> None:
        await retrying(stop, notify_overdue, what=CONSUMER)

    try:
        await consume(
            stop,
            consumer,
            Consumer(CONSUMER, tracker.handle, wake=outbox.wake),
            relay_outbox(outbox, publisher, stop),
            tick=scan,
            every=scan_every,
        )
    finally:
        await outbox.close()
        await publisher.close()
        await pool.close()


def main() -> None:
    settings = load_settings()
    start_metrics_server(settings)
    serve(lambda stop: run_tracker(settings, stop))


if __name__ == "__main__":
    main()
