"""The feedback tracker process: `python -m services.entrypoints.feedback`.

Reads the violation and acknowledgement streams in its own consumer group, commits the
offsets only after the batch is in the database, and every few seconds sends
response.overdue for each answer past its deadline. Its notices and dead letters leave
through its own outbox (schema `feedback`) and a relay in this process, under the
tracker's own Kafka login: the registry's relay may write only the violation stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from events.authorities import FEEDBACK_TRACKER
from events.catalogue import load_catalogue
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.adapters.feedback_store import MIGRATIONS, SCHEMA, PostgresFeedbackStore
from services.adapters.group_consumer import GroupConsumer
from services.bootstrap import load_signer, utc_now
from services.config import Settings
from services.consuming import Issuer
from services.entrypoints.own_outbox import OwnOutbox, own_pool
from services.errors import BrokerError
from services.feedback.domain import Answerers
from services.feedback.handlers import CONSUMER, Tracker
from services.runtime.service import retrying, serve_process

GROUP = "redline-feedback"


async def run_tracker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = utc_now,
    scan_every: float = 5.0,
) -> None:
    pool = await own_pool(settings, stop, migrations=MIGRATIONS, schema=SCHEMA, what=CONSUMER)
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
    own = OwnOutbox.open(settings, pool, SCHEMA)
    consumer = GroupConsumer(
        settings, name=CONSUMER, group=GROUP, topics=[VIOLATIONS.name, ACKNOWLEDGEMENTS.name]
    )
    try:
        await consumer.start()
    except BrokerError:
        await own.close()
        raise

    async def notify_overdue() -> None:
        if await tracker.notify_overdue():
            own.outbox.wake()

    async def scan() -> None:
        await retrying(stop, notify_overdue, what=CONSUMER)

    await own.consume(stop, consumer, CONSUMER, tracker.handle, tick=scan, every=scan_every)


def main() -> None:
    serve_process(run_tracker)


if __name__ == "__main__":
    main()
