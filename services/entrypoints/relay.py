"""The outbox relay process: `python -m services.entrypoints.relay`."""

from __future__ import annotations

import asyncio

from services.adapters.publisher import KafkaPublisher
from services.bootstrap import registry_store
from services.config import Settings, load_settings
from services.metrics import start_metrics_server
from services.outbox.relay import OutboxRelay
from services.runtime.service import retrying, serve


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    kafka, _ = settings.require()
    publisher = KafkaPublisher(
        kafka, replication_factor=settings.kafka_replication_factor, auth=settings.kafka_auth
    )

    async def relay() -> None:
        async with registry_store(settings) as store:
            await OutboxRelay(store.outbox, publisher, batch_size=settings.relay_batch_size).run(
                stop
            )

    try:
        while not stop.is_set():
            await retrying(stop, relay, what="relay")
    finally:
        await publisher.close()


def main() -> None:
    settings = load_settings()
    start_metrics_server(settings)
    serve(lambda stop: run_relay(settings, stop))


if __name__ == "__main__":
    main()
