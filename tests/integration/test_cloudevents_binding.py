"""Every record Redline produces follows the CloudEvents Kafka protocol binding in
structured mode, read as a utility or bank would read it: with confluent-kafka
(librdkafka) and the CloudEvents SDK's Kafka binding, not our own clients.

The whole loop runs on a broker of this module's own, so every record on it is Redline's:
the registry and its relay (violations), a department enforcer process (its
acknowledgements and dead letters), the blocklist builder (entries, heartbeats and a
tombstone) and the Python subscriber connector (its acknowledgement and dead letter).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.kafka import KafkaMessage as LegacyKafkaMessage
from cloudevents.v1.kafka import from_structured as legacy_from_structured
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.results import Blocked, Clear
from connectors.subscriber.subscriber import Subscriber
from events.authorities import (
    BLOCKLIST_BUILDER,
    NATURAL_RESOURCES,
    demo_subscriber,
    department_authority,
)
from events.codec import decode, encode_signed
from events.envelope import KAFKA_CONTENT_TYPE
from events.models import (
    CaseDetails,
    DeadLetter,
    MeasureApplied,
    MeasureLifted,
    MeasuresAnswered,
)
from events.signing import Signer, TrustStore
from events.topics import (
    ACKNOWLEDGEMENTS,
    ALL_TOPICS,
    DEAD_LETTERS,
    VIOLATIONS,
    blocklist_topic,
)
from services.adapters.kafka import ensure_topics
from services.bootstrap import bootstrap_registry
from services.config import Settings
from services.entrypoints.blocklist import run_builder
from services.entrypoints.relay import run_relay
from services.registry.domain import Step
from services.registry.handlers import STEP_EVENTS, Registry
from services.runtime.devkeys import key_id
from services.runtime.embedded import EmbeddedBroker
from services.runtime.processes import spawn, stop_processes
from tests.conftest import Stack, create_database
from tests.integration.connectors import started
from tests.support import case_body, eventually, filed_event, service_env

# Longer than the suite's 30 s per test: its own broker, a department and a subscriber.
pytestmark = pytest.mark.timeout(120)

LOANS = "refuse_loans"
DEPARTMENT = "finance"
HEADERS: list[tuple[str, bytes]] = [("content-type", b"application/cloudevents+json")]
FORGED_CASE, FORGED_SUBJECT = "RL-FORGED-1", "f" * 64  # keys of the records the test forges
FORGED_KEYS = (FORGED_CASE.encode(), FORGED_SUBJECT.encode())
WAIT = 120.0  # a faust worker starting and joining its group on two shared cores
REVOCATION = {
    "court": "孝义市人民法院",
    "decision_no": "(2026)晋1181行初9号",
    "revoked_on": "2026-11-20",
}


@dataclass(frozen=True)
class Record:
    """One record as confluent-kafka delivered it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


def read_with_librdkafka(bootstrap: str, topics: list[str]) -> list[Record]:
    """Every record of `topics`, by manual assignment from the start to the end offsets."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "redline-cloudevents-binding-test",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        assigned, ends = [], {}
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                if high > low:
                    assigned.append(TopicPartition(topic, partition, low))
                    ends[topic, partition] = high
        consumer.assign(assigned)
        records: list[Record] = []
        remaining = set(ends)
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                continue
            name, partition, offset = message.topic(), message.partition(), message.offset()
            assert name is not None and partition is not None and offset is not None
            headers = message.headers()
            assert headers is None or isinstance(headers, list)
            records.append(
                Record(
                    name,
                    partition,
                    offset,
                    message.key(),
                    message.value(),
                    None if headers is None else [(k, _as_bytes(v)) for k, v in headers],
                )
            )
            if offset + 1 >= ends[name, partition]:
                remaining.discard((name, partition))
        assert not remaining, f"could not read to the end of {remaining}"
        return records
    finally:
        consumer.close()


def _as_bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def produce_with_librdkafka(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    """A forged record, sent as a well-behaved producer would (header included)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    failures: list[Any] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    producer.produce(topic, value, key, headers=list(HEADERS), on_delivery=delivered)
    assert producer.flush(30) == 0 and not failures, failures


@pytest.fixture
async def own(
    stack: Stack, settings: Settings, trust: TrustStore, module_broker: EmbeddedBroker
) -> Settings:
    """The session's keys (`trust` made them), this module's broker, a database of its own."""
    await ensure_topics(module_broker.bootstrap)
    return settings.with_endpoints(module_broker.bootstrap, await create_database(stack))


@pytest.fixture
def department(own: Settings, tmp_path: Path) -> Iterator[None]:
    env = service_env(own)
    proc = spawn(
        [sys.executable, "-m", "services.entrypoints.department", DEPARTMENT],
        log_path=tmp_path / f"department-{DEPARTMENT}.log",
        env=env,
    )
    yield
    stop_processes([proc])


@pytest.fixture
def bank(own: Settings, tmp_path: Path) -> Iterator[Subscriber]:
    authority = demo_subscriber("banks")
    subscriber = Subscriber(
        SubscriberConfig(
            name=authority.code,
            measures=(LOANS,),
            bootstrap=own.kafka_bootstrap or "",
            replica=tmp_path / "loans.sqlite3",
            trust_store=own.trust_store,
            subject_key=own.subject_key,
            signing_key=own.home / "keys" / f"{key_id(authority)}.pem",
            signing_key_id=key_id(authority),
            freshness_bound=5.0,
        )
    )
    with started(subscriber):
        yield subscriber


@pytest.fixture
async def loop_running(own: Settings) -> AsyncIterator[Registry]:
    """The registry, its relay and the blocklist builder, in this process."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(run_relay(own, stop)),
        asyncio.create_task(run_builder(own, stop, heartbeat_every=0.3)),
    ]
    try:
        async with bootstrap_registry(own) as registry:
            yield registry
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def test_every_record_is_a_structured_mode_cloudevent_that_outside_clients_read(
    own: Settings,
    trust: TrustStore,
    loop_running: Registry,
    department: None,
    bank: Subscriber,
) -> None:
    registry, bootstrap = loop_running, own.kafka_bootstrap or ""
    body = case_body(("cultivated", "2"))
    subject = body["subject"]["id"]
    filed = await registry.file_case(CaseDetails.model_validate(body))
    assert LOANS in {d.measure for d in filed.starts}

    # Forged records (a key nobody trusts), for the department and the subscriber to refuse.
    stranger = Signer.generate("stranger")
    forged_case = filed_event(case_body(("cultivated", "1")), FORGED_CASE)
    forged, raw = encode_signed(forged_case, stranger, source=NATURAL_RESOURCES.source)
    produce_with_librdkafka(bootstrap, VIOLATIONS.name, FORGED_CASE.encode(), raw)
    produce_with_librdkafka(bootstrap, blocklist_topic(LOANS).name, FORGED_SUBJECT.encode(), raw)

    async def blocked() -> bool:
        return isinstance(bank.check(LOANS, subject), Blocked)

    await eventually(blocked, timeout=WAIT, what="the bank's block")
    await registry.record_step(
        filed.case_id, Step.revocation, STEP_EVENTS[Step.revocation][0].model_validate(REVOCATION)
    )

    async def cleared() -> bool:
        return bank.check(LOANS, subject) == Clear(LOANS)

    await eventually(cleared, timeout=WAIT, what="the revocation lifts the bank's block")

    department_source = department_authority(DEPARTMENT).source
    bank_source = demo_subscriber("banks").source

    def produced() -> tuple[list[Record], set[tuple[str, str]]]:
        records = read_with_librdkafka(bootstrap, [t.name for t in ALL_TOPICS])
        seen = set()
        for record in records:
            if record.value is not None and record.key not in FORGED_KEYS:
                envelope, payload = decode(record.value, trust)
                seen.add((record.topic, f"{envelope.source} {type(payload).__name__}"))
                # A department's answers travel together: each counts as what it answers.
                for answer in payload.answers if isinstance(payload, MeasuresAnswered) else []:
                    seen.add((record.topic, f"{envelope.source} {type(answer).__name__}"))
        return records, seen

    expected = {
        (VIOLATIONS.name, f"{NATURAL_RESOURCES.source} CaseFiled"),
        (VIOLATIONS.name, f"{NATURAL_RESOURCES.source} CaseRevoked"),
        (ACKNOWLEDGEMENTS.name, f"{department_source} {MeasuresAnswered.__name__}"),
        (ACKNOWLEDGEMENTS.name, f"{department_source} {MeasureApplied.__name__}"),
        (ACKNOWLEDGEMENTS.name, f"{department_source} {MeasureLifted.__name__}"),
        (ACKNOWLEDGEMENTS.name, f"{bank_source} {MeasureApplied.__name__}"),
        (DEAD_LETTERS.name, f"{department_source} {DeadLetter.__name__}"),
        (DEAD_LETTERS.name, f"{bank_source} {DeadLetter.__name__}"),
        (blocklist_topic(LOANS).name, f"{BLOCKLIST_BUILDER.source} BlocklistEntry"),
        (blocklist_topic(LOANS).name, f"{BLOCKLIST_BUILDER.source} BlocklistHeartbeat"),
        (blocklist_topic(LOANS).name, f"{BLOCKLIST_BUILDER.source} BlocklistLifted"),
    }

    async def all_produced() -> bool:
        return expected <= (await asyncio.to_thread(produced))[1]

    await eventually(all_produced, timeout=WAIT, what="every producer's records")
    records, _ = await asyncio.to_thread(produced)

    # A lift is a signed event like any other (blocklist.lifted), never a bare tombstone.
    assert [r for r in records if r.value is None] == []
    for record in records:
        where = f"{record.topic}/{record.partition}@{record.offset}"
        assert record.value is not None, where
        assert record.headers == HEADERS, f"{where}: {record.headers}"
        message = ce_kafka.KafkaMessage(
            headers=dict(record.headers), key=record.key, value=record.value
        )
        event = ce_kafka.from_kafka(message, JSONFormat())  # picks structured mode itself
        envelope = forged if record.key in FORGED_KEYS else decode(record.value, trust)[0]
        assert (event.get_id(), event.get_type(), event.get_source()) == (
            envelope.id,
            envelope.type,
            envelope.source,
        ), where
        assert event.get_subject() == envelope.subject
        assert event.get_datacontenttype() == "application/json"  # of `data`, kept apart
        assert event.get_extension("partitionkey") == (record.key or b"").decode()
        # The SDK's older API (cloudevents.v1.kafka) reads the same message.
        legacy = legacy_from_structured(
            LegacyKafkaMessage(dict(record.headers), record.key, record.value)
        )
        assert legacy["id"] == envelope.id and legacy["type"] == envelope.type
    assert HEADERS[0][1].decode() == KAFKA_CONTENT_TYPE
