"""The audit checkpoint topic: signed chain heads published outside the database, read
back whole by `redline audit verify` (one partition, compacted per database and schema)."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from events.topics import DURABLE, FOREVER, Topic
from services.adapters.kafka import client_options
from services.audit.anchor import Checkpoint
from services.config import KafkaAuth
from services.errors import BrokerError

AUDIT_CHECKPOINTS = Topic(
    name="redline.audit.checkpoints.v1",
    partitions=1,
    key="database/schema: compaction keeps each chain's latest head",
    description=(
        "Signed heads (sequence number and hash) of every audit chain, so a truncated or "
        "rewritten tail is found by `redline audit verify`. Written only by the audit anchor."
    ),
    event_types=(),
    config={"cleanup.policy": "compact", "retention.ms": FOREVER, **DURABLE},
)


async def publish_checkpoints(
    bootstrap: str, checkpoints: Sequence[Checkpoint], auth: KafkaAuth | None = None
) -> None:
    """Write each checkpoint, acknowledged by every in-sync replica before returning."""
    if not checkpoints:
        return
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client_options(auth))
    try:
        await producer.start()
        for checkpoint in checkpoints:
            await producer.send_and_wait(
                AUDIT_CHECKPOINTS.name, checkpoint.encode(), key=checkpoint.key.encode()
            )
    except KafkaError as exc:
        raise BrokerError(f"cannot publish audit checkpoints: {exc}") from exc
    finally:
        await producer.stop()


async def read_checkpoint_values(
    bootstrap: str, auth: KafkaAuth | None = None, *, timeout: float = 30.0
) -> list[bytes | None]:
    """Every record now on the checkpoint topic, in order (none if it does not exist)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options(auth)
    )
    try:
        await consumer.start()
        if AUDIT_CHECKPOINTS.name not in await consumer.topics():  # refreshes metadata
            return []
        partition = TopicPartition(AUDIT_CHECKPOINTS.name, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        values: list[bytes | None] = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=int(timeout * 1000))
            if not batch:
                raise BrokerError(
                    f"{AUDIT_CHECKPOINTS.name}: nothing read within {timeout:.0f} s before its end"
                )
            values += [record.value for record in batch.get(partition, [])]
        return values
    except KafkaError as exc:
        raise BrokerError(f"cannot read the audit checkpoints: {exc}") from exc
    finally:
        await consumer.stop()
