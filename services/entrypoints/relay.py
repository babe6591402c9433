"""The outbox relay process: `python -m services.entrypoints.relay`."""

from __future__ import annotations

import asyncio

from services.bootstrap import registry_store
from services.config import Settings
from services.entrypoints.own_outbox import publisher_for
from services.outbox.relay import OutboxRelay
from services.runtime.service import retrying, serve_process


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    publisher = publisher_for(settings)

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
    serve_process(run_relay)


if __name__ == "__main__":
    main()
