"""The feedback tracker process: `python -m services.entrypoints.feedback`.

Reads the violation and acknowledgement streams in its own consumer group, commits the
offsets only after the batch is in the database, and every few seconds sends
response.overdue for each answer past its deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime

from events.authorities import FEEDBACK_TRACKER
from events.catalogue import load_catalogue
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.adapters.feedback_store import PostgresFeedbackStore
from services.adapters.group_consumer import GroupConsumer
from services.adapters.postgres import create_pool
from services.bootstrap import load_signer, utc_now
from services.config import Settings, load_settings
from services.consuming import Issuer
from services.errors import BrokerError
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
    _, database = settings.require()
    pool = await retrying(stop, lambda: create_pool(database, max_size=4), what=CONSUMER)
    if pool is None:
        return
    tracker = Tracker(
        load_catalogue(),
        PostgresFeedbackStore(pool),
        TrustStore.load(settings.trust_store),
        Issuer(load_signer(settings, FEEDBACK_TRACKER), FEEDBACK_TRACKER.source),
        clock,
    )
    consumer = GroupConsumer(
        settings, name=CONSUMER, group=GROUP, topics=[VIOLATIONS.name, ACKNOWLEDGEMENTS.name]
    )
    try:
        await consumer.start()
    except BrokerError:
        await pool.close()
        raise
    last_scan = 0.0
    try:
        while not stop.is_set():
            messages = await consumer.batch()
            if messages and await consumer.take(stop, tracker.handle, messages) is None:
                break  # stopped before the batch was stored: leave it uncommitted
            if time.monotonic() - last_scan >= scan_every:
                await retrying(stop, tracker.notify_overdue, what=CONSUMER)
                last_scan = time.monotonic()
    finally:
        await consumer.stop()
        await pool.close()


def main() -> None:
    settings = load_settings()
    start_metrics_server()
    serve(lambda stop: run_tracker(settings, stop))


if __name__ == "__main__":
    main()
