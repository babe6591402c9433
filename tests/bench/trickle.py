"""A trickle: cases arriving one at a time, so every batch holds one event, the way a
department sees the stream when it keeps up. CPU per event (beyond the process's own idle
use) of the faust department beside a bare aiokafka loop doing the same work
(`DepartmentRuntime.enforce` and its relay), each in its own process: what the fan-out
pays per case and per department, where the drain's figures hide the cost per batch.

`python -m tests.bench.trickle CODE` is that bare loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from subprocess import Popen
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from events.authorities import NATURAL_RESOURCES
from events.codec import encode_signed
from events.topics import VIOLATIONS
from services.adapters.kafka import ensure_topics
from services.config import load_settings
from services.entrypoints.department import DepartmentRuntime
from services.runtime.devkeys import ensure_dev_keys, load_dev_signer
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.processes import spawn, stop_process
from tests.bench.department import from_the_start, next_batch
from tests.bench.fanout import process_cpu
from tests.bench.figures import figure
from tests.support import case_body, filed_event

RATE_PER_SECOND = 10
IDLE_SECONDS = 10.0


async def _consumed(conn: asyncpg.Connection, code: str) -> int:
    try:
        count: int = await conn.fetchval(f"SELECT count(*) FROM dept_{code}.consumed_events")
    except asyncpg.UndefinedTableError:
        return 0
    return count


async def _per_event_cpu(
    kafka: str, database: str, home: Path, argv: list[str], code: str, count: int, before: int
) -> tuple[float, float]:
    """(ms of CPU per event beyond idle, idle CPU in %) for the process `argv` starts; the
    stream already holds `before` events, which it takes first."""
    signer = load_dev_signer(home, NATURAL_RESOURCES)
    template = case_body(("cultivated", "3"))
    producer = AIOKafkaProducer(bootstrap_servers=kafka, acks="all")
    await producer.start()
    env = {**os.environ, "KAFKA_BOOTSTRAP": kafka, "DATABASE_URL": database}
    env["REDLINE_HOME"] = str(home)
    proc: Popen[bytes] = spawn(argv, log_path=home / f"trickle-{code}.log", env=env)
    conn = await asyncpg.connect(database)

    async def send(number: int) -> None:
        case_id = f"RL-TRICKLE-{code}-{number:06d}"
        payload = filed_event(template, case_id)
        _, raw = encode_signed(payload, signer, source=NATURAL_RESOURCES.source)
        await (await producer.send(VIOLATIONS.name, raw, key=case_id.encode()))

    async def taken(total: int, what: str) -> None:
        deadline = time.monotonic() + 120
        while await _consumed(conn, code) < total:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what}: see {home / f'trickle-{code}.log'}")
            await asyncio.sleep(0.05)

    try:
        await send(0)  # joined, migrated and warm before anything is timed
        await taken(before + 1, "the first event was never taken")
        idle_from, idle_at = process_cpu(proc.pid)[1], time.monotonic()
        await asyncio.sleep(IDLE_SECONDS)  # measuring idle use: nothing to wait for
        idle = (process_cpu(proc.pid)[1] - idle_from) / (time.monotonic() - idle_at)
        used_from, began = process_cpu(proc.pid)[1], time.monotonic()
        for number in range(1, count + 1):
            delay = began + number / RATE_PER_SECOND - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await send(number)
        await taken(before + count + 1, "the trickle was not all taken")
        used = process_cpu(proc.pid)[1] - used_from - idle * (time.monotonic() - began)
        return used / count * 1000, idle * 100
    finally:
        await conn.close()
        stop_process(proc)
        await producer.stop()


async def run(kafka: str, database: str, count: int) -> list[dict[str, Any]]:
    del kafka, database  # its own broker and Postgres: an empty stream to start from
    events = max(20, min(count, 400))
    home = Path(tempfile.mkdtemp(prefix="redline-bench-trickle-"))
    ensure_dev_keys(home)
    broker, postgres = EmbeddedBroker(home / "broker"), EmbeddedPostgres(home / "postgres")
    broker.start()
    try:
        postgres.start()
        await ensure_topics(broker.bootstrap)

        async def cpu(module: str, code: str, before: int) -> tuple[float, float]:
            """`python -m module code`'s CPU per event and idle, `before` events already in."""
            argv = [sys.executable, "-m", module, code]
            return await _per_event_cpu(
                broker.bootstrap, postgres.url, home, argv, code, events, before
            )

        bare, bare_idle = await cpu("tests.bench.trickle", "approvals", before=0)
        # The bare loop's events are there too: the department's new group reads from the start.
        faust, faust_idle = await cpu("services.entrypoints.department", "water_supply", events + 1)
    finally:
        postgres.stop()
        broker.stop()
    bare_row = figure("bare loop, CPU per event", bare, "ms")
    return [
        figure("events, one per batch", events, "events"),
        bare_row,
        figure("department (faust), CPU per event", faust, "ms", bare_row),
        figure("bare loop, idle CPU", bare_idle, "%"),
        figure("department (faust), idle CPU", faust_idle, "%"),
    ]


async def _bare_loop(code: str) -> None:
    """The department's own work on a plain aiokafka consumer, for ever: the baseline."""
    settings = load_settings()
    kafka, _ = settings.require()
    runtime = DepartmentRuntime(code, settings)
    await runtime.migrate()
    await runtime.enforcer()
    relay = asyncio.create_task(runtime.relay())
    # The department's own fetch wait, so both wait on the broker alike.
    consumer = await from_the_start(kafka, fetch_max_wait_ms=settings.fetch_wait_ms)
    try:
        while not relay.done():
            messages = await next_batch(consumer)
            if messages:
                await runtime.enforce(messages)
        relay.result()
    finally:
        await consumer.stop()


if __name__ == "__main__":
    asyncio.run(_bare_loop(sys.argv[1]))
