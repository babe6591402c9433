"""The outbox relay process: `python -m services.entrypoints.relay`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from services.adapters.publisher import KafkaPublisher
from services.bootstrap import registry_store
from services.config import Settings, load_settings
from services.errors import DatabaseError
from services.outbox.relay import OutboxRelay

log = logging.getLogger(__name__)


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    kafka, _ = settings.require()
    publisher = KafkaPublisher(kafka, replication_factor=settings.kafka_replication_factor)
    backoff = 0.1
    try:
        while not stop.is_set():
            try:
                async with registry_store(settings) as store:
                    await OutboxRelay(
                        store.outbox, publisher, batch_size=settings.relay_batch_size
                    ).run(stop)
            except DatabaseError as exc:
                log.warning("relay: %s; retrying in %.1f s", exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 5.0)
    finally:
        await publisher.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = load_settings()

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_relay(settings, stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
