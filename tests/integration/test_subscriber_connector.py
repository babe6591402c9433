"""The blocklist subscriber on the real broker: the test plays the builder, publishing
signed entries, lifts and heartbeats, and watches replicas, acks and dead letters."""

from __future__ import annotations

import base64
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.subscriber.access import ensure_dev_tokens
from connectors.subscriber.errors import InvalidInput
from connectors.subscriber.results import Blocked, Clear, Stale
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import Deployment, RecordFactory
from events.codec import decode
from events.models import DeadLetter, MeasureApplied, Site
from events.topics import ACKNOWLEDGEMENTS, DEAD_LETTERS, blocklist_topic
from services.adapters.kafka import ensure_topics
from services.runtime.embedded import EmbeddedBroker
from tests.conftest import Stack, running_broker
from tests.integration.connectors import connector_daemon, started, webhook
from tests.support import (
    eventually,
    new_parcel_code,
    new_unit_code,
    new_uscc,
    producing,
    read_topic,
)

POWER = "refuse_power_supply"
LOANS = "refuse_loans"
POWER_SUB = "power_supply_test_subscriber"
LOANS_SUB = "banks_test_subscriber"
# Unless a test says otherwise, every case is at these premises and every check asks there.
UNIT = new_unit_code()
PREMISES = Site(location="孝义市兑镇镇东村北侧厂房", real_estate_unit=UNIT)
HOME = "孝义市梧桐镇西村12号"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return Deployment.create(tmp_path_factory.mktemp("subscribers"), POWER_SUB, LOANS_SUB)


class Builder:
    """The test's stand-in for the blocklist builder: signed records onto the real topics."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        deployment: Deployment,
        factory: RecordFactory | None = None,
    ) -> None:
        self.producer = producer
        # `factory`: a builder whose list is another (its heads count only its records).
        self.factory = factory or deployment.factory

    async def entry(
        self, measure: str, subject: str, *case_ids: str, sites: tuple[Site, ...] = ()
    ) -> str:
        """An entry whose cases are at `sites`, by default all at PREMISES."""
        at = sites or (PREMISES,) * len(case_ids)
        key, value, event_id = self.factory.entry(measure, subject, case_ids=case_ids, sites=at)
        await self.producer.send_and_wait(blocklist_topic(measure).name, value, key=key)
        return event_id

    async def lift(self, measure: str, subject: str) -> None:
        """The builder's signed lift."""
        key, value = self.factory.lift(measure, subject)
        await self.producer.send_and_wait(blocklist_topic(measure).name, value, key=key)

    async def tombstone(self, measure: str, subject: str) -> None:
        """An unsigned tombstone, as anyone able to write the topic could write it."""
        key, _ = self.factory.tombstone(subject, measure)
        await self.producer.send_and_wait(blocklist_topic(measure).name, None, key=key)

    async def raw(self, measure: str, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(blocklist_topic(measure).name, value, key=key)

    async def heartbeats(self, measure: str) -> None:
        now = datetime.now(UTC)
        for partition in range(blocklist_topic(measure).partitions):
            key, value = self.factory.heartbeat(measure, partition, now)
            await self.producer.send_and_wait(
                blocklist_topic(measure).name, value, key=key, partition=partition
            )


@pytest.fixture
async def builder(stack: Stack, deployment: Deployment) -> AsyncIterator[Builder]:
    async with producing(stack.kafka) as producer:
        yield Builder(producer, deployment)


@contextmanager
def running(
    deployment: Deployment,
    bootstrap: str,
    name: str,
    measure: str,
    replica: Path,
    **options: object,
) -> Iterator[Subscriber]:
    """A subscriber with its consumer and senders in background threads of this process."""
    config = deployment.config(name, (measure,), bootstrap=bootstrap, replica=replica, **options)  # type: ignore[arg-type]
    with started(Subscriber(config)) as subscriber:
        yield subscriber


def answers(
    subscriber: Subscriber, measure: str, subject: str, kind: type, site: str = ""
) -> Callable[[], Awaitable[bool]]:
    """Whether a check (at `site`, by default PREMISES) answers `kind`."""
    site = site or UNIT

    async def check() -> bool:
        return isinstance(subscriber.check(measure, subject, site), kind)

    return check


async def end_offsets(bootstrap: str, measure: str) -> dict[tuple[str, int], int]:
    topic = blocklist_topic(measure).name
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(blocklist_topic(measure).partitions)]
        ends = await consumer.end_offsets(partitions)
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def caught_up(bootstrap: str, subscriber: Subscriber, measure: str) -> None:
    async def done() -> bool:
        return subscriber.offsets() == await end_offsets(bootstrap, measure)

    await eventually(done, what=f"{subscriber.config.name} caught up on {measure}")


async def test_an_entry_reaches_the_subscribers_of_its_measure_only_and_is_acknowledged(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    subject, case_id = new_uscc(), f"case-{uuid.uuid4().hex}"
    with (
        running(deployment, stack.kafka, POWER_SUB, POWER, tmp_path / "power.sqlite3") as power,
        running(deployment, stack.kafka, LOANS_SUB, LOANS, tmp_path / "loans.sqlite3") as loans,
    ):
        event_id = await builder.entry(POWER, subject, case_id)
        await builder.heartbeats(POWER)
        await builder.heartbeats(LOANS)

        await eventually(answers(power, POWER, subject, Blocked), what="blocked at power")
        result = power.check(POWER, subject, UNIT)
        assert isinstance(result, Blocked)
        assert [c.case_id for c in result.cases] == [case_id]
        assert result.masked_name.startswith("孝")

        await eventually(answers(loans, LOANS, subject, Clear), what="clear at loans")
        await caught_up(stack.kafka, loans, LOANS)
        digest = deployment.factory.ids(POWER).digest(subject)
        assert loans.replica().blocked(POWER, digest) is None  # never received, never kept
        with pytest.raises(InvalidInput) as refused:
            loans.check(POWER, subject, UNIT)
        assert refused.value.field == "measure"

        async def acknowledged() -> bool:
            records = await read_topic(stack.kafka, ACKNOWLEDGEMENTS.name)
            return any(r.key == case_id.encode() for r in records)

        await eventually(acknowledged, what="the MeasureApplied acknowledgement")
        records = await read_topic(stack.kafka, ACKNOWLEDGEMENTS.name)
        ours = [r for r in records if r.key == case_id.encode()]
        assert len(ours) == 1
        envelope, ack = decode(ours[0].value, deployment.trust)
        assert isinstance(ack, MeasureApplied)
        assert envelope.source == f"/authorities/{POWER_SUB}"
        assert (ack.case_id, ack.measure, ack.department) == (case_id, POWER, "power_supply")
        assert ack.caused_by == event_id
        assert ack.reference.startswith(f"{POWER_SUB}:{blocklist_topic(POWER).name}:")

        await builder.lift(POWER, subject)
        await eventually(answers(power, POWER, subject, Clear), what="lifted by the signed lift")


async def test_power_answers_for_the_subject_at_a_site_and_the_bank_wherever_it_asks(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    subject, unit, parcel = new_uscc(), new_unit_code(), new_parcel_code()
    at_unit = Site(location="孝义市兑镇镇东村北侧3号厂房", real_estate_unit=unit)
    on_parcel = Site(location="某村空地上的厂房", parcel_code=parcel)
    by_unit, by_parcel = f"case-{uuid.uuid4().hex}", f"case-{uuid.uuid4().hex}"
    with (
        running(deployment, stack.kafka, POWER_SUB, POWER, tmp_path / "power.sqlite3") as power,
        running(deployment, stack.kafka, LOANS_SUB, LOANS, tmp_path / "loans.sqlite3") as loans,
    ):
        await builder.entry(POWER, subject, by_unit, by_parcel, sites=(at_unit, on_parcel))
        await builder.entry(LOANS, subject, by_unit, by_parcel)
        await builder.heartbeats(POWER)
        await builder.heartbeats(LOANS)
        await eventually(answers(power, POWER, subject, Blocked, unit), what="power at the unit")

        def cases_at(site: str) -> list[str]:
            result = power.check(POWER, subject, site)
            assert isinstance(result, Blocked), (site, result)
            return [case.case_id for case in result.cases]

        assert cases_at(unit) == [by_unit]
        assert cases_at("孝义市兑镇镇东村北侧３号厂房") == [by_unit]  # the address, spelt otherwise
        assert cases_at(new_unit_code(parcel)) == [by_parcel]  # a unit on the case's parcel
        elsewhere = Clear(POWER, blocked_elsewhere=True)
        assert power.check(POWER, subject, new_unit_code(unit[:19])) == elsewhere  # neighbour
        assert power.check(POWER, subject, HOME) == elsewhere
        with pytest.raises(InvalidInput) as refused:
            power.check(POWER, subject)
        assert refused.value.field == "site"

        await eventually(answers(loans, LOANS, subject, Blocked, HOME), what="the bank refuses")
        blocked = loans.check(LOANS, subject)
        assert isinstance(blocked, Blocked) and len(blocked.cases) == 2

        # A correction moved the unit-coded case: the builder sends the entry again.
        moved = new_unit_code()
        at_moved = Site(location="孝义市兑镇镇南村厂房", real_estate_unit=moved)
        await builder.entry(POWER, subject, by_unit, by_parcel, sites=(at_moved, on_parcel))
        await eventually(answers(power, POWER, subject, Blocked, moved), what="the moved block")
        assert power.check(POWER, subject, unit) == elsewhere


async def test_a_restart_resumes_from_the_stored_offsets(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    replica = tmp_path / "power.sqlite3"
    before, after = new_uscc(), new_uscc()
    with running(deployment, stack.kafka, POWER_SUB, POWER, replica) as first:
        await builder.entry(POWER, new_uscc(), f"case-{uuid.uuid4().hex}")
        await builder.entry(POWER, before, f"case-{uuid.uuid4().hex}")
        await builder.heartbeats(POWER)
        await eventually(answers(first, POWER, before, Blocked), what="first run applied")
        await caught_up(stack.kafka, first, POWER)
        stored = first.offsets()
        read_first = first.feed_status.records if first.feed_status else 0

    await builder.entry(POWER, after, f"case-{uuid.uuid4().hex}")
    await builder.heartbeats(POWER)
    with running(deployment, stack.kafka, POWER_SUB, POWER, replica) as second:
        assert isinstance(second.check(POWER, before, UNIT), Blocked)  # from the replica, at once
        await eventually(answers(second, POWER, after, Blocked), what="second run applied")
        await caught_up(stack.kafka, second, POWER)
        ends = await end_offsets(stack.kafka, POWER)
        since_stop = sum(ends[tp] - (stored[tp] or 0) for tp in ends)
        status = second.feed_status
        assert status is not None
        assert status.records == since_stop == 4  # one entry and three heartbeats, no replay
        assert read_first == sum(stored[tp] or 0 for tp in stored) > since_stop


async def test_without_heartbeats_past_the_bound_the_answer_is_stale(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    subject = new_uscc()
    with running(
        deployment, stack.kafka, POWER_SUB, POWER, tmp_path / "power.sqlite3", freshness_bound=1.5
    ) as power:
        await builder.heartbeats(POWER)
        await eventually(answers(power, POWER, subject, Clear), what="fresh after heartbeats")
        await eventually(answers(power, POWER, subject, Stale), what="stale without heartbeats")
        stale = power.check(POWER, subject, UNIT)
        assert isinstance(stale, Stale)
        assert stale.age_seconds is not None and stale.age_seconds > 1.5
        await builder.heartbeats(POWER)
        await eventually(answers(power, POWER, subject, Clear), what="fresh again")


async def test_a_bad_id_is_refused_with_the_reason(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    subject = new_uscc()
    wrong = subject[:-1] + ("0" if subject[-1] != "0" else "1")
    with running(deployment, stack.kafka, POWER_SUB, POWER, tmp_path / "power.sqlite3") as power:
        await builder.heartbeats(POWER)
        await eventually(answers(power, POWER, subject, Clear), what="fresh")
        with pytest.raises(InvalidInput) as refused:
            power.check(POWER, wrong, UNIT)
        assert refused.value.field == "subject"
        assert "check character" in refused.value.reason


async def test_a_garbage_record_is_dead_lettered_and_later_records_still_apply(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    subject = new_uscc()
    garbage = f"garbage {uuid.uuid4()}".encode()
    key = deployment.factory.subject_hash(subject, POWER).encode()  # same partition as the entry
    with running(deployment, stack.kafka, POWER_SUB, POWER, tmp_path / "power.sqlite3") as power:
        await builder.raw(POWER, key, garbage)
        await builder.entry(POWER, subject, f"case-{uuid.uuid4().hex}")
        await builder.heartbeats(POWER)
        await eventually(answers(power, POWER, subject, Blocked), what="the entry after garbage")

        async def letters() -> list[DeadLetter]:
            found = []
            for r in await read_topic(stack.kafka, DEAD_LETTERS.name):
                if r.key == POWER_SUB.encode():
                    _, letter = decode(r.value, deployment.trust)
                    assert isinstance(letter, DeadLetter)
                    if base64.b64decode(letter.original_b64) == garbage:
                        found.append(letter)
            return found

        async def dead_lettered() -> bool:
            return bool(await letters())

        await eventually(dead_lettered, what="the dead letter")
        (letter,) = await letters()
        assert letter.consumer == POWER_SUB
        assert letter.topic == blocklist_topic(POWER).name
        assert letter.reason == "invalid_event"
        assert "JSON" in letter.detail


class _Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that fails its first request, to make the sender retry."""

    bodies: ClassVar[list[dict[str, object]]] = []
    failures: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not self.failures:
            self.failures.append(1)
            self.send_response(500)
        else:
            self.bodies.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_the_webhook_receives_each_change_despite_a_failure(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    class Receiver(_Receiver):
        bodies: ClassVar[list[dict[str, object]]] = []
        failures: ClassVar[list[int]] = []

    handler = Receiver
    subject = new_uscc()
    digest = deployment.factory.subject_hash(subject, POWER)
    with (
        webhook(handler) as url,
        running(
            deployment, stack.kafka, POWER_SUB, POWER, tmp_path / "power.sqlite3", webhook_url=url
        ),
    ):
        await builder.entry(POWER, subject, f"case-{uuid.uuid4().hex}")
        await builder.lift(POWER, subject)

        def changes() -> list[object]:
            return [b["change"] for b in handler.bodies if b["subject_hash"] == digest]

        async def delivered() -> bool:
            return changes() == ["blocked", "lifted"]

        await eventually(delivered, what="both changes at the webhook")
        assert handler.failures == [1]
        assert subject not in json.dumps(handler.bodies)


async def test_the_daemon_serves_checks_and_stops_on_sigterm(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    subject = new_uscc()
    await builder.entry(POWER, subject, f"case-{uuid.uuid4().hex}")
    await builder.heartbeats(POWER)
    env = {
        **os.environ,
        "REDLINE_CONNECTOR_NAME": POWER_SUB,
        "REDLINE_CONNECTOR_MEASURES": POWER,
        "REDLINE_CONNECTOR_BOOTSTRAP": stack.kafka,
        "REDLINE_CONNECTOR_REPLICA": str(tmp_path / "daemon.sqlite3"),
        "REDLINE_CONNECTOR_TRUST_STORE": str(deployment.trust_store),
        "REDLINE_CONNECTOR_SUBJECT_KEY": str(deployment.subject_key),
        "REDLINE_CONNECTOR_API_TOKENS": str(ensure_dev_tokens(tmp_path / "api")),
        "REDLINE_CONNECTOR_PORT": "0",
    }
    token = (tmp_path / "api" / "api.token").read_text().strip()
    cli = Path(sys.executable).with_name("redline-connector")
    async with connector_daemon([str(cli), "run"], env, token) as client:
        fields = {"measure": POWER, "subject": subject, "site": UNIT}

        async def blocked() -> bool:
            response = await client.post("/v1/checks", json=fields)
            return response.status_code == 200 and response.json()["status"] == "blocked"

        await eventually(blocked, what="blocked through the daemon's API")
        anonymous = await client.post("/v1/checks", json=fields, headers={"Authorization": ""})
        assert anonymous.status_code == 401
        elsewhere = await client.get(
            "/v1/checks", params={"measure": POWER, "subject": subject, "site": HOME}
        )
        assert elsewhere.json()["status"] == "clear"
        assert elsewhere.json()["blocked_elsewhere"] is True
        no_site = await client.get("/v1/checks", params={"measure": POWER, "subject": subject})
        assert no_site.status_code == 422
        assert no_site.json()["errors"][0]["field"] == "site"
        health = await client.get("/v1/health")
        assert health.json()["subscriber"] == POWER_SUB


@pytest.fixture
async def lonely_broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    """A broker of this test's own, to restart without its data."""
    with running_broker(tmp_path / "broker") as broker:
        await ensure_topics(broker.bootstrap, topics=(blocklist_topic(POWER), DEAD_LETTERS))
        yield broker


async def test_a_broker_that_lost_its_data_is_read_again_from_the_start(
    lonely_broker: EmbeddedBroker, deployment: Deployment, tmp_path: Path
) -> None:
    replica = tmp_path / "power.sqlite3"
    gone, kept = new_uscc(), new_uscc()

    async def publish(*subjects: str) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=lonely_broker.bootstrap, acks="all")
        await producer.start()
        # This broker's list only: a builder that lost its data too publishes it anew.
        factory = RecordFactory(deployment.factory.master_key, deployment.factory.signer)
        try:
            builder = Builder(producer, deployment, factory)
            for subject in subjects:
                await builder.entry(POWER, subject, f"case-{uuid.uuid4().hex}")
            await builder.heartbeats(POWER)
        finally:
            await producer.stop()

    await publish(gone)
    with running(deployment, lonely_broker.bootstrap, POWER_SUB, POWER, replica) as first:
        await eventually(answers(first, POWER, gone, Blocked), what="blocked before the loss")
        old_cluster = first.replica().meta().get("cluster_id")
    assert old_cluster

    lonely_broker.stop()
    lonely_broker.start()  # same port, empty memory, a new cluster id
    await ensure_topics(lonely_broker.bootstrap, topics=(blocklist_topic(POWER), DEAD_LETTERS))
    # More records than before, so the stored offsets are all within the new logs.
    await publish(kept, *(new_uscc() for _ in range(8)))
    with running(deployment, lonely_broker.bootstrap, POWER_SUB, POWER, replica) as second:
        await eventually(answers(second, POWER, kept, Blocked), what="the new cluster's block")
        await caught_up(lonely_broker.bootstrap, second, POWER)
        assert second.check(POWER, gone, UNIT) == Clear(POWER)  # the old cluster's block is gone
        assert second.replica().meta()["cluster_id"] not in (None, old_cluster)
