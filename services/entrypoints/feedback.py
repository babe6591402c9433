"""The feedback tracker process: `python -m services.entrypoints.feedback`.

Reads the violation and acknowledgement streams in its own consumer group, commits the
offsets only after the batch is in the database, and every few seconds sends
response.overdue for each answer past its deadline. Its notices and dead letters leave
through its own outbox (schema `feedback`) and a relay in this process, under the
tracker's own Kafka login: the registry's relay may write only the violation stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from events.authorities import FEEDBACK_TRACKER
from events.catalogue import load_catalogue
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.adapters.feedback_store import MIGRATIONS, SCHEMA, PostgresFeedbackStore
from services.adapters.group_consumer import GroupConsumer
from services.adapters.migrate import migrate
from services.adapters.outbox import PostgresOutbox
from services.adapters.postgres import create_pool
from services.adapters.publisher import KafkaPublisher
from services.bootstrap import load_signer, utc_now
from services.config import Settings, load_settings
from services.consuming import Issuer, RawMessage
from services.errors import BrokerError
from services.feedback.domain import Answerers
from services.feedback.handlers import CONSUMER, Tracker, TrackOutcome
from services.metrics import start_metrics_server
from services.outbox.relay import OutboxRelay
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
    migrated = await retrying(
        stop, lambda: migrate(database, package=MIGRATIONS, schema=SCHEMA), what=CONSUMER
    )
    if migrated is None:
        return
    pool = await retrying(stop, lambda: create_pool(database, max_size=4), what=CONSUMER)
    if pool is None:
        return
    catalogue = load_catalogue()
    tracker = Tracker(
        catalogue,
        PostgresFeedbackStore(pool),
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

    async def stored(messages: Sequence[RawMessage]) -> TrackOutcome:
        outcome = await tracker.handle(messages)
        outbox.wake()  # its dead letters are committed: the relay may read them now
        return outcome

    async def notify_overdue() -> int:
        noticed = await tracker.notify_overdue()
        if noticed:
            outbox.wake()
        return noticed

    relay = asyncio.create_task(
        OutboxRelay(outbox, publisher, idle_wait=0.5, name=SCHEMA).run(stop)
    )
    last_scan = 0.0
    try:
        while not stop.is_set():
            if relay.done():
                relay.result()  # a relay that died takes the tracker with it
            messages = await consumer.batch()
            if messages and await consumer.take(stop, stored, messages) is None:
                break  # stopped before the batch was stored: leave it uncommitted
            if time.monotonic() - last_scan >= scan_every:
                await retrying(stop, notify_overdue, what=CONSUMER)
                last_scan = time.monotonic()
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await consumer.stop()
        await outbox.close()
        await publisher.close()
        await pool.close()


def main() -> None:
    settings = load_settings()
    start_metrics_server(settings)
    serve(lambda stop: run_tracker(settings, stop))


if __name__ == "__main__":
    main()
