"""#18 item 1: the feedback tracker's notices and dead letters leave through its own outbox
and relay, under its own identity. While cases keep flowing from the registry and the
tracker issues overdue notices, the registry's outbox never holds a tracker row, and its
relay, held to the generated ACLs of `redline-relay`, keeps every case reaching the
violation stream. The embedded Tansu enforces no ACLs, so the registry relay's publisher
here refuses, as an enforcing broker would, every topic the generated table denies it;
every row of each outbox is checked against its owner's generated ACLs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg

from events.models import CaseDetails
from events.signing import TrustStore
from services.adapters.postgres import create_pool
from services.adapters.publisher import KafkaPublisher
from services.bootstrap import bootstrap_registry, registry_store
from services.config import Settings
from services.entrypoints.feedback import run_tracker
from services.outbox.ports import EventPublisher, PendingEvent, Refusal, Undeliverable
from services.outbox.relay import OutboxRelay
from tests.support import case_body, eventually
from tests.unit.test_kafka_acls import writes

OVERDUE = "redline.response.overdue.v1"


class AclEnforcing(EventPublisher):
    """A publisher held to one user's generated ACLs: a topic it may not write is refused
    for good (TopicAuthorizationFailed), as Apache Kafka's authorizer refuses it."""

    def __init__(self, inner: KafkaPublisher, user: str) -> None:
        self.inner = inner
        self.allowed = writes(user)
        self.refused: list[str] = []

    async def cluster_id(self) -> str:
        return await self.inner.cluster_id()

    async def publish(self, events: Sequence[PendingEvent]) -> None:
        denied = [e for e in events if e.topic not in self.allowed]
        await self.inner.publish([e for e in events if e.topic in self.allowed])
        if denied:
            self.refused += [e.topic for e in denied]
            raise Undeliverable(
                [
                    Refusal(
                        tuple(e.position for e in denied),
                        "TopicAuthorizationFailedError",
                        "not authorised",
                        True,
                    )
                ]
            )


class MovableClock:
    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def _topics(pool: asyncpg.Pool, schema: str) -> set[str]:
    return {r["topic"] for r in await pool.fetch(f"SELECT DISTINCT topic FROM {schema}.outbox")}


async def test_overdue_notices_leave_by_the_trackers_relay_while_cases_keep_flowing(
    own_database: Settings,
    trust: TrustStore,  # the development keys the processes sign with
) -> None:
    settings = own_database
    kafka, database = settings.require()
    stop = asyncio.Event()
    clock = MovableClock()
    pool = await create_pool(database, max_size=2)
    publisher = AclEnforcing(KafkaPublisher(kafka), "redline-relay")

    async def registry_relay() -> None:
        async with registry_store(settings) as store:
            await OutboxRelay(store.outbox, publisher, idle_wait=0.2, max_backoff=0.5).run(stop)

    relay = asyncio.create_task(registry_relay())
    tracker = asyncio.create_task(run_tracker(settings, stop, clock=clock, scan_every=0.1))
    filed: list[str] = []

    async def alive() -> None:
        for task in (relay, tracker):
            if task.done():
                task.result()  # it died: raise its error here

    async def registry_holds_only_cases() -> None:
        assert await _topics(pool, "public") <= writes("redline-relay")

    async def all_cases_sent() -> bool:
        await alive()
        await registry_holds_only_cases()
        unsent: int = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE key = ANY($1::text[]) AND sent_at IS NULL",
            filed,
        )
        return unsent == 0

    async def notices_sent() -> int:
        await alive()
        count: int = await pool.fetchval(
            "SELECT count(*) FROM feedback.outbox WHERE event_type = $1 AND sent_at IS NOT NULL",
            OVERDUE,
        )
        return count

    try:
        async with bootstrap_registry(settings) as registry:

            async def file(count: int) -> None:
                for _ in range(count):
                    details = CaseDetails.model_validate(case_body())
                    filed.append((await registry.file_case(details)).case_id)

            await file(3)
            await eventually(all_cases_sent, timeout=60, what="the first cases published")

            async def required() -> bool:
                await alive()
                owed: int = await pool.fetchval(
                    "SELECT count(*) FROM responses WHERE case_id = ANY($1::text[]) "
                    "AND required_at IS NOT NULL",
                    filed,
                )
                return owed > 0

            await eventually(required, timeout=60, what="the tracker read the cases")
            clock.ahead = timedelta(days=30)  # every answer owed is now past its deadline

            async def overdue_sent() -> bool:
                return await notices_sent() > 0

            for _ in range(3):  # cases keep coming while the notices go out
                await file(3)
                await registry_holds_only_cases()
            await eventually(overdue_sent, timeout=60, what="overdue notices published")
            await file(3)
            await eventually(all_cases_sent, timeout=60, what="every case published")
    finally:
        stop.set()
        await asyncio.gather(relay, tracker, return_exceptions=True)
        await publisher.inner.close()
    try:
        assert publisher.refused == []  # nothing the registry relay may not write reached it
        quarantined = await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE quarantined_at IS NOT NULL"
        )
        assert quarantined == 0
        assert await _topics(pool, "public") == writes("redline-relay")
        assert OVERDUE in {
            r["event_type"] for r in await pool.fetch("SELECT event_type FROM feedback.outbox")
        }
        assert await _topics(pool, "feedback") <= writes("redline-feedback")
    finally:
        await pool.close()
