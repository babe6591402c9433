"""Outbox relay publish rate against bare producers sending the same bytes.

Two baselines: aiokafka's `send()` per event, and the relay's own publisher (record
batches per partition) with no outbox behind it. The ratio that counts is against the
second: the same client work, so what it measures is the outbox's cost.

On a shared machine one pass swings by a factor of two, so the record-batch producer and
the relay run in turns, `RELAY_ROUNDS` times (3 unless told): each round's ratio compares
two runs a few seconds apart, and the figures are the medians, with every round's number
kept in the JSON (`runs`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from events.codec import encode_signed
from events.signing import Signer
from events.topics import VIOLATIONS
from services.adapters.outbox import PostgresOutbox
from services.adapters.postgres import create_pool
from services.adapters.publisher import KafkaPublisher
from services.outbox.ports import PendingEvent
from services.outbox.relay import OutboxRelay
from tests.support import case_body, filed_event

BATCH = 2000  # the relay's batch size


def _events(count: int) -> list[tuple[str, str, str, bytes]]:
    signer = Signer.generate("natural_resources-bench")
    template = case_body(("cultivated", "3"))
    rows = []
    for number in range(count):
        case_id = f"RL-BENCH-{number:07d}"
        payload = filed_event(template, case_id)
        envelope, raw = encode_signed(payload, signer, source="/authorities/natural_resources")
        rows.append((envelope.id, envelope.type, case_id, raw))
    return rows


async def _bare(kafka: str, rows: list[tuple[str, str, str, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, acks="all", linger_ms=2, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(VIOLATIONS.name, raw, key=key.encode()) for _, _, key, raw in rows
        ]
        await asyncio.gather(*futures)
        return len(rows) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def _bare_batches(kafka: str, rows: list[tuple[str, str, str, bytes]]) -> float:
    events = [
        PendingEvent(number, VIOLATIONS.name, key, raw)
        for number, (_, _, key, raw) in enumerate(rows)
    ]
    publisher = KafkaPublisher(kafka)
    try:
        await publisher.publish(events[:1])  # connect and warm up, as the relay does
        started = time.perf_counter()
        for first in range(1, len(events), BATCH):
            await publisher.publish(events[first : first + BATCH])
        return (len(events) - 1) / (time.perf_counter() - started)
    finally:
        await publisher.close()


async def _relay(kafka: str, database: str, rows: list[tuple[str, str, str, bytes]]) -> float:
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("TRUNCATE outbox")
        await conn.copy_records_to_table(
            "outbox",
            records=[(eid, etype, VIOLATIONS.name, key, raw) for eid, etype, key, raw in rows],
            columns=["event_id", "event_type", "topic", "key", "value"],
        )
    finally:
        await conn.close()
    pool = await create_pool(database)
    publisher = KafkaPublisher(kafka)
    try:
        relay = OutboxRelay(PostgresOutbox(pool, database), publisher)
        await relay.publish_pending(max_batches=1)  # connect and warm up on the first batch
        started, first = time.perf_counter(), relay.published
        while await relay.publish_pending():
            pass
        return (relay.published - first) / (time.perf_counter() - started)
    finally:
        await publisher.close()
        await pool.close()


async def run(kafka: str, database: str, count: int) -> list[dict[str, Any]]:
    rows = _events(count)
    bare = await _bare(kafka, rows)
    batches: list[float] = []
    relayed: list[float] = []
    for _ in range(int(os.environ.get("RELAY_ROUNDS", "3"))):
        batches.append(await _bare_batches(kafka, rows))
        relayed.append(await _relay(kafka, database, rows))
    ratios = [relay / batch for relay, batch in zip(relayed, batches, strict=True)]
    return [
        {"figure": "bare producer, send() per event", "value": bare, "unit": "events/s"},
        {
            "figure": "bare producer, record batches",
            "value": statistics.median(batches),
            "unit": "events/s",
            "runs": batches,
        },
        {
            "figure": "outbox relay",
            "value": statistics.median(relayed),
            "unit": "events/s",
            "runs": relayed,
            "baseline": "bare producer, record batches",
            "ratio": statistics.median(ratios),
            "ratios": ratios,
            "target": 0.7,
        },
    ]
