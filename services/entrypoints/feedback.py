"""The feedback tracker process: `python -m services.entrypoints.feedback`.

Reads the violation and acknowledgement streams in its own consumer group, commits the
offsets only after the batch is in the database, and every few seconds sends
response.overdue for each answer past its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.adapters.feedback_store import PostgresFeedbackStore
from services.adapters.postgres import create_pool
from services.authorities import FEEDBACK_TRACKER
from services.bootstrap import load_signer, utc_now
from services.config import Settings, load_settings
from services.consuming import Issuer, RawMessage
from services.departments.catalogue import load_catalogue
from services.errors import BrokerError, DatabaseError
from services.feedback.handlers import Tracker

log = logging.getLogger("redline.feedback")
T = TypeVar("T")
GROUP = "redline-feedback"


async def _retrying(stop: asyncio.Event, attempt: Callable[[], Awaitable[T]]) -> T | None:
    """Retry database errors with capped backoff; None if asked to stop first."""
    backoff = 0.1
    while not stop.is_set():
        try:
            return await attempt()
        except DatabaseError as exc:
            log.warning("feedback: %s; retrying in %.1f s", exc, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, 5.0)
    return None


async def run_tracker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = utc_now,
    scan_every: float = 5.0,
) -> None:
    kafka, database = settings.require()
    pool = await _retrying(stop, lambda: create_pool(database, max_size=4))
    if pool is None:
        return
    tracker = Tracker(
        load_catalogue(),
        PostgresFeedbackStore(pool),
        TrustStore.load(settings.trust_store),
        Issuer(load_signer(settings, FEEDBACK_TRACKER), FEEDBACK_TRACKER.source),
        clock,
    )
    consumer = AIOKafkaConsumer(
        VIOLATIONS.name,
        ACKNOWLEDGEMENTS.name,
        bootstrap_servers=kafka,
        group_id=GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await pool.close()
        raise BrokerError(f"feedback tracker cannot reach {kafka}: {exc!r}") from exc
    last_scan = 0.0
    try:
        while not stop.is_set():
            fetched = await consumer.getmany(timeout_ms=200, max_records=2000)
            messages = [
                RawMessage(r.topic, r.partition, r.offset, r.key, r.value)
                for records in fetched.values()
                for r in records
            ]
            if messages:
                if await _retrying(stop, functools.partial(tracker.handle, messages)) is None:
                    break  # stopped before the batch was stored: leave it uncommitted
                await consumer.commit()
            if time.monotonic() - last_scan >= scan_every:
                await _retrying(stop, tracker.notify_overdue)
                last_scan = time.monotonic()
    finally:
        await consumer.stop()
        await pool.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_tracker(settings, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
