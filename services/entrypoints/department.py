"""One department's enforcer: a faust-streaming app, its own consumer group and schema.

`redline department run <code>` (or `python -m services.entrypoints.department <code>`).
The agent takes batches from the violation stream; the batch is acknowledged to Kafka
only after its effects are committed, and a database error is retried with backoff on
the same batch, so nothing is skipped. The department's acknowledgements and dead
letters leave through its own outbox and relay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver

from events.topics import VIOLATIONS
from services.adapters.publisher import KafkaPublisher
from services.adapters.same_broker import SameBroker
from services.config import KafkaAuth, load_settings
from services.consuming import RawMessage
from services.entrypoints.department_runtime import ACK_LINGER_SECONDS, DepartmentRuntime
from services.metrics import count_measures, prepare_consumer, start_metrics_server
from services.runtime.service import configure_logging

__all__ = ["ACK_LINGER_SECONDS", "DepartmentRuntime", "build_app", "main"]

log = logging.getLogger("redline.department")

BATCH_SIZE = 2000
BROKER_CHECK_SECONDS = 1.0  # how soon a broker that came back empty ends the worker
BATCH_WAIT_SECONDS = 0.01


def prompt_transport(
    fetch_wait_ms: int, before_commit: Callable[[], Awaitable[bool]] | None = None
) -> type[aiokafka_driver.Transport]:
    """faust fixes the consumer's fetch wait at 1500 ms; on a broker that answers a waiting
    fetch only at its deadline (Tansu), every event would wait that long. Its transport's
    consumer class is the documented extension point, so a subclass sets the wait (and
    guards commits); `DepartmentApp` uses it for its own transport only, so nothing of
    faust's is changed for the rest of the process."""

    class PromptConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_wait_ms  # read by its fetcher at start
            return consumer

    class PromptConsumer(aiokafka_driver.Consumer):
        def _new_consumer_thread(self) -> PromptConsumerThread:
            return PromptConsumerThread(self, loop=self.loop, beacon=self.beacon)

        async def _commit(self, offsets: Any) -> bool:
            # Never old offsets into a new cluster: no commit while that cannot be ruled out.
            if before_commit is not None and not await before_commit():
                return False
            result: bool = await super()._commit(offsets)
            return result

    class PromptTransport(aiokafka_driver.Transport):
        Consumer = PromptConsumer

    return PromptTransport


class DepartmentApp(faust.App):
    """A faust app on its own transport class (`prompt_transport`), chosen here rather than
    by replacing the class faust looks up by URL, which every app in the process shares."""

    def __init__(self, id: str, *, transport: type[aiokafka_driver.Transport], **options: Any):
        self._transport_type = transport  # before faust's set-up, which may ask for it
        super().__init__(id, **options)

    def _new_transport(self) -> Any:
        return self._transport_type(self.conf.broker_consumer, self)


async def take_batches(stream: Any, max_: int, within: float) -> AsyncIterator[list[Any]]:
    """Batches of events, each acknowledged to faust only after the caller resumes us.

    faust's `take_events` stops buffering while a batch is applied, so each batch is only
    what arrives in `within` after the last one: small, and paying a transaction each.
    Here the next batch fills while this one commits, so a backlog drains in full
    batches, and a trickle still waits at most `within` (the same pattern and stream
    hooks as `take_events`)."""
    events: list[Any] = []
    ready, full, room = asyncio.Event(), asyncio.Event(), asyncio.Event()
    room.set()

    async def add_to_buffer(value: Any) -> Any:
        event = stream.current_event
        if event is None:
            raise RuntimeError("take buffer found current_event is None")
        events.append(event)
        ready.set()
        if len(events) >= max_:
            full.set()
            room.clear()
            await stream.wait(room)  # backpressure: never more than max_ buffered
        return value

    stream.enable_acks = False  # acknowledged below, once the caller has applied them
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    while not stream.should_stop:
        await stream.wait_for_stopped(ready)
        if not full.is_set():
            await stream.wait_for_stopped(full, timeout=within)
        batch = events[:max_]
        del events[:max_]
        if len(events) < max_:
            full.clear()
            room.set()
        if not events:
            ready.clear()
        if batch:
            yield batch
            for event in batch:
                await stream.ack(event)


def faust_credentials(auth: KafkaAuth | None) -> faust.SASLCredentials | None:
    """The department's SASL login for faust's consumer and producer (None: no SASL)."""
    if auth is None:
        return None
    return faust.SASLCredentials(
        username=auth.username,
        password=auth.password,
        mechanism=auth.mechanism,
        ssl_context=ssl.create_default_context() if auth.tls else None,
    )


def _transport(runtime: DepartmentRuntime) -> type[aiokafka_driver.Transport]:
    watch = runtime.same_broker  # never old offsets into a new cluster
    check = None if watch is None else watch.check
    return prompt_transport(runtime.settings.fetch_wait_ms, check)


def build_app(runtime: DepartmentRuntime) -> faust.App:
    code, settings = runtime.department.code, runtime.settings
    kafka, _ = settings.require()
    datadir = settings.home / "faust" / code
    datadir.mkdir(parents=True, exist_ok=True)
    app = DepartmentApp(
        f"redline-department-{code}",
        transport=_transport(runtime),
        broker=f"kafka://{kafka}",
        broker_credentials=faust_credentials(settings.kafka_auth),
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_allow_declare=False,  # topics are declared once, in events/topics.py
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A member that died is dropped from the group after this, not faust's 60 s.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        datadir=str(datadir),
    )
    violations = app.topic(
        VIOLATIONS.name, value_serializer="raw", key_serializer="raw", allow_empty=True
    )

    @app.agent(violations, name="enforce")
    async def enforce(stream: Any) -> AsyncIterator[None]:
        async for events in take_batches(stream, BATCH_SIZE, BATCH_WAIT_SECONDS):
            batch = [
                RawMessage(
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    e.message.key,
                    e.message.value,
                )
                for e in events
            ]
            try:
                await runtime.enforce(batch)
            except Exception:
                # A bug, not bad input: die before faust acknowledges the batch, so the
                # next start sees it again instead of skipping it.
                log.critical("%s: batch failed; exiting unacknowledged", code, exc_info=True)
                os._exit(70)
            yield None

    async def relay() -> None:
        await runtime.relay()

    app.task(relay)

    async def same_broker() -> None:
        if runtime.same_broker is not None:
            await runtime.same_broker.check()

    app.timer(interval=BROKER_CHECK_SECONDS)(same_broker)

    return app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m services.entrypoints.department <department code>")
    settings = load_settings()
    level = settings.log_level
    configure_logging(level)
    runtime = DepartmentRuntime(args[0], settings)  # an unknown code stops here
    kafka, _ = runtime.settings.require()
    watch = KafkaPublisher(kafka, auth=runtime.settings.kafka_auth)  # asks the cluster id only
    first = asyncio.run(runtime.first_cluster())  # before the consumer reads anything
    runtime.same_broker = SameBroker(first, watch.cluster_id, f"department {args[0]}")
    start_metrics_server(settings)  # first: it decides whether the counting below counts
    prepare_consumer(runtime.department.code, [VIOLATIONS.name])
    count_measures(runtime.department.code, 0, 0)
    asyncio.run(runtime.migrate())  # its tables exist before it consumes anything
    app = build_app(runtime)
    # faust would replace the root's handlers, and with them the masking filter.
    worker = faust.Worker(app, loglevel=level, quiet=True, override_logging=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
