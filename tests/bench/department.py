"""One department draining a backlog, beside two bare aiokafka consumers:

- the enforcer's own work (the same `DepartmentRuntime.enforce` per batch: verify, block,
  case, consumed id, audit entry, signed acknowledgement in the outbox, and its relay
  running beside it), so the ratio is what the faust worker costs: the like-for-like
  baseline;
- a light one doing only the parse, signature check and two inserts, which shows what
  the bookkeeping (audit chain, signed acks, outbox and relay) costs on top.

Then the same backlog drained by two workers of another department in one consumer
group: how a department that must catch up faster scales out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from events.authorities import NATURAL_RESOURCES
from events.catalogue import Stage, load_catalogue
from events.codec import decode, encode_signed
from events.decisions import decide
from events.models import CaseDetails, CaseFiled
from events.signing import TrustStore
from events.topics import VIOLATIONS
from services.config import load_settings
from services.consuming import RawMessage
from services.entrypoints.department import DepartmentRuntime
from services.runtime.devkeys import ensure_dev_keys, load_dev_signer
from services.runtime.processes import spawn, stop_processes
from tests.bench.figures import figure
from tests.support import case_body

DEPARTMENT = "power_supply"
BARE_DEPARTMENT = "approvals"  # also one measure started at filing: the same work per event
SCALED_DEPARTMENT = "finance"  # the same again, drained by two workers


async def _backlog(kafka: str, home: Path, count: int) -> None:
    signer = load_dev_signer(home, NATURAL_RESOURCES)
    template = case_body(("cultivated", "3"))
    details = CaseDetails.model_validate(template)
    # What the registry decides for such a case: every department here starts one measure.
    template["starts"] = [
        decision.model_dump(mode="json")
        for decision in decide(load_catalogue(), [Stage.filing], details.parcels, details.facts)
    ]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, acks="all", linger_ms=5, max_batch_size=1024 * 1024
    )
    await producer.start()
    deliveries = []
    try:
        for number in range(count):
            case_id = f"RL-DRAIN-{number:07d}"
            payload = CaseFiled.model_validate({**template, "case_id": case_id})
            _, raw = encode_signed(payload, signer, source=NATURAL_RESOURCES.source)
            deliveries.append(await producer.send(VIOLATIONS.name, raw, key=case_id.encode()))
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def from_the_start(kafka: str, fetch_max_wait_ms: int = 500) -> AIOKafkaConsumer:
    """A bare consumer holding every partition of the stream, at its first offset."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka, enable_auto_commit=False, fetch_max_wait_ms=fetch_max_wait_ms
    )
    await consumer.start()
    await consumer.topics()
    parts = [
        TopicPartition(VIOLATIONS.name, p)
        for p in consumer.partitions_for_topic(VIOLATIONS.name) or ()
    ]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    return consumer


async def next_batch(consumer: AIOKafkaConsumer) -> list[RawMessage]:
    """The consumer's next fetch (up to 2000 records), as a department's runtime takes it."""
    batch = await consumer.getmany(timeout_ms=500, max_records=2000)
    return [
        RawMessage(r.topic, r.partition, r.offset, r.key, r.value)
        for records in batch.values()
        for r in records
    ]


async def _drain(
    consumer: AIOKafkaConsumer, total: int, handle: Callable[[list[RawMessage]], Awaitable[None]]
) -> float:
    """Records per second while `handle` takes each fetched batch, until `total` are taken."""
    done = 0
    started = time.perf_counter()
    while done < total:
        messages = await next_batch(consumer)
        if messages:
            await handle(messages)
            done += len(messages)
    return total / (time.perf_counter() - started)


async def _bare(kafka: str, database: str, trust: TrustStore, total: int) -> float:
    conn = await asyncpg.connect(database)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS bench_bare_blocks (case_id text PRIMARY KEY, subject_id text, "
        "measure text, applied_at timestamptz DEFAULT now());"
        "CREATE TABLE IF NOT EXISTS bench_bare_consumed (event_id text PRIMARY KEY)"
    )

    async def block(messages: list[RawMessage]) -> None:
        blocks, consumed = [], []
        for message in messages:
            envelope, payload = decode(message.value or b"", trust)
            consumed.append((envelope.id,))
            if isinstance(payload, CaseFiled):
                blocks.append((payload.case_id, payload.subject.id, "refuse_power_supply"))
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO bench_bare_consumed VALUES ($1) ON CONFLICT DO NOTHING", consumed
            )
            await conn.executemany(
                "INSERT INTO bench_bare_blocks (case_id, subject_id, measure) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                blocks,
            )

    consumer = await from_the_start(kafka)
    try:
        return await _drain(consumer, total, block)
    finally:
        await consumer.stop()
        await conn.close()


async def _bare_enforcer(kafka: str, database: str, home: Path, total: int) -> float:
    """A plain aiokafka loop handing each batch to the department's own runtime."""
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP": kafka,
            "DATABASE_URL": database,
            "REDLINE_HOME": str(home),
            "REDLINE_DEV_KEYS": "1",  # a benchmark's own home, with development keys
        }
    )
    runtime = DepartmentRuntime(BARE_DEPARTMENT, settings)
    await runtime.migrate()
    await runtime.enforcer()
    relay = asyncio.create_task(runtime.relay())
    consumer = await from_the_start(kafka)
    try:
        return await _drain(consumer, total, runtime.enforce)
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await consumer.stop()
        await runtime.close()


async def _department(
    kafka: str,
    database: str,
    home: Path,
    total: int,
    code: str = DEPARTMENT,
    metrics: bool = True,
    workers: int = 1,
) -> tuple[float, float]:
    """Drain rate of `workers` processes of one department (one consumer group), and the
    time from launch to its first committed batch."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka,
        "DATABASE_URL": database,
        "REDLINE_HOME": str(home),
        "REDLINE_METRICS": "on" if metrics else "off",
    }
    procs = [
        spawn(
            [sys.executable, "-m", "services.entrypoints.department", code],
            log_path=home / f"department-{code}-{worker}.log",
            env=env,
        )
        for worker in range(workers)
    ]
    conn = await asyncpg.connect(database)
    launched = time.perf_counter()
    try:
        consumed, first_at, first_count = 0, 0.0, 0
        while consumed < total:
            for worker, proc in enumerate(procs):
                log = home / f"department-{code}-{worker}.log"
                assert proc.poll() is None, f"{code} worker exited; see {log}"
            try:
                consumed = await conn.fetchval(f"SELECT count(*) FROM dept_{code}.consumed_events")
            except asyncpg.UndefinedTableError:
                consumed = 0
            if consumed and not first_at:
                first_at, first_count = time.perf_counter(), consumed
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
        return (consumed - first_count) / (finished - first_at), first_at - launched
    finally:
        await conn.close()
        stop_processes(procs)


async def run(kafka: str, database: str, count: int) -> list[dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix="redline-bench-dept-"))
    trust = TrustStore.load(ensure_dev_keys(home))
    # The broker is fresh and this workload runs first, so the backlog is all there is.
    # (Counted, not read from end offsets: Tansu's lag behind what it has stored.)
    await _backlog(kafka, home, count)
    total = count
    bare = await _bare(kafka, database, trust, total)
    same_work = await _bare_enforcer(kafka, database, home, total)
    department, startup = await _department(kafka, database, home, total)
    # Scaled out: two workers of one department split the stream's partitions.
    scaled, _ = await _department(kafka, database, home, total, SCALED_DEPARTMENT, workers=2)
    # Metrics overhead: the same drain by departments with one measure each, counting on
    # and off in turn, so drift over the run touches both sides alike.
    without = [await _department(kafka, database, home, total, "water_supply", metrics=False)]
    counted = [await _department(kafka, database, home, total, "gas_supply", metrics=True)]
    without.append(await _department(kafka, database, home, total, "banks", metrics=False))
    counted.append((department, startup))
    on = sum(rate for rate, _ in counted) / len(counted)
    off = sum(rate for rate, _ in without) / len(without)
    bare_row = figure("bare consumer, parse + verify + 2 inserts", bare, "events/s")
    same_row = figure("bare consumer, the enforcer's work", same_work, "events/s", bare_row)
    department_row = figure(
        f"department {DEPARTMENT} (faust)", department, "events/s", same_row, target=0.7
    )
    off_row = figure("drain, metrics off (mean of 2)", off, "events/s")
    return [
        figure("backlog", total, "events"),
        bare_row,
        same_row,
        department_row,
        figure("department start to first batch", startup, "s"),
        figure(
            f"department {SCALED_DEPARTMENT}, two workers (one group)",
            scaled,
            "events/s",
            department_row,
            target=5_000,
        ),
        off_row,
        figure("drain, metrics on (mean of 2)", on, "events/s", off_row, target=0.95),
    ]
