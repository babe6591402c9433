"""#18 items 4 and 9, as attacks on the real broker: whoever can write a blocklist topic
cannot lift a block (a tombstone, a forged lift, a replayed old lift), a replica that
diverged from the list (a topic deleted and re-created empty) answers stale and never
clear, and one list's replica and key confirm nothing on another list. Run by `make
chaos` and the test suite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from connectors.subscriber.errors import ConfigError
from connectors.subscriber.results import Blocked, Clear, Stale
from connectors.subscriber.subjects import SubjectIds
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import Deployment
from events.privacy import parse_subject_id
from events.signing import Signer
from events.subject_keys import derive_measure_key, write_measure_keys
from events.topics import blocklist_topic
from services.runtime.embedded import EmbeddedBroker
from tests.conftest import running_broker
from tests.integration.connectors import started
from tests.support import eventually, new_uscc, producing

pytestmark = pytest.mark.integration

LOANS, POWER = "refuse_loans", "refuse_power_supply"
BANK = "banks_integrity_test"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test's own: one test deletes and re-creates a topic."""
    with running_broker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return Deployment.create(tmp_path / "keys", BANK)


class Topic:
    """The loans topic as the builder, and as an attacker with write access, use it."""

    def __init__(self, producer: AIOKafkaProducer, deployment: Deployment) -> None:
        self.producer = producer
        self.factory = deployment.factory
        self.name = blocklist_topic(LOANS).name

    async def send(self, key: bytes, value: bytes | None) -> None:
        await self.producer.send_and_wait(self.name, value, key=key)

    async def block(self, subject: str) -> None:
        key, value, _ = self.factory.entry(LOANS, subject, case_ids=(f"case-{uuid.uuid4()}",))
        await self.send(key, value)

    async def heartbeats(self) -> None:
        for partition in range(blocklist_topic(LOANS).partitions):
            key, value = self.factory.heartbeat(LOANS, partition)
            await self.producer.send_and_wait(self.name, value, key=key, partition=partition)


@pytest.fixture
async def topic(broker: EmbeddedBroker, deployment: Deployment) -> AsyncIterator[Topic]:
    await _create(broker)
    async with producing(broker.bootstrap) as producer:
        yield Topic(producer, deployment)


async def _create(broker: EmbeddedBroker) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        spec = blocklist_topic(LOANS)
        await admin.create_topics([NewTopic(spec.name, spec.partitions, 1)])
    finally:
        await admin.close()


@contextmanager
def bank(deployment: Deployment, broker: EmbeddedBroker, replica: Path) -> Iterator[Subscriber]:
    config = deployment.config(BANK, (LOANS,), bootstrap=broker.bootstrap, replica=replica)
    with started(Subscriber(config)) as subscriber:
        yield subscriber


def says(subscriber: Subscriber, subject: str, kind: type) -> object:
    async def check() -> bool:
        return isinstance(subscriber.check(LOANS, subject), kind)

    return check


async def test_a_tombstone_a_forged_lift_or_a_replayed_lift_lifts_nothing(
    broker: EmbeddedBroker, topic: Topic, deployment: Deployment, tmp_path: Path
) -> None:
    subject = new_uscc()
    old_lift = topic.factory.lift(LOANS, subject)  # genuine, from before the block
    await topic.block(subject)
    await topic.heartbeats()
    with bank(deployment, broker, tmp_path / "bank.sqlite3") as subscriber:
        await eventually(says(subscriber, subject, Blocked), what="blocked")  # type: ignore[arg-type]

        # (a) the attacker: a tombstone, a lift signed by a key claiming the builder's id,
        # and the builder's own older lift replayed.
        forger = Signer.generate(topic.factory.signer.key_id)
        forged = type(topic.factory)(topic.factory.master_key, forger)
        await topic.send(*topic.factory.tombstone(subject, LOANS))
        await topic.send(*forged.lift(LOANS, subject, version=10**12))
        await topic.send(*old_lift)
        await topic.heartbeats()

        async def all_three_seen() -> bool:
            status = subscriber.feed_status
            return status is not None and (
                status.tombstones,
                status.refused,
                status.replayed,
            ) == (1, 1, 1)

        await eventually(all_three_seen, what="the tombstone, forgery and replay ignored")
        assert isinstance(subscriber.check(LOANS, subject), Blocked)
        metrics = subscriber.health()["consumer"]
        assert metrics["ignored_tombstones"] == 1 and metrics["replayed"] == 1

        # (b) the builder's own lift: clear.
        await topic.send(*topic.factory.lift(LOANS, subject))
        await topic.heartbeats()
        await eventually(says(subscriber, subject, Clear), what="lifted by the builder")  # type: ignore[arg-type]


async def test_a_topic_deleted_and_recreated_empty_is_stale_never_clear(
    broker: EmbeddedBroker, topic: Topic, deployment: Deployment, tmp_path: Path
) -> None:
    """(c) M1: the log is lost (or a replica offline past a retention that dropped what it
    needed): the replica must not answer clear for the blocks it no longer holds."""
    subject = new_uscc()
    await topic.block(subject)
    await topic.heartbeats()
    replica = tmp_path / "bank.sqlite3"
    with bank(deployment, broker, replica) as subscriber:
        await eventually(says(subscriber, subject, Blocked), what="blocked")  # type: ignore[arg-type]

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic.name])
    finally:
        await admin.close()
    await _create(broker)
    await topic.heartbeats()  # the builder still vouches for its list: one entry

    with bank(deployment, broker, replica) as subscriber:

        async def reread() -> bool:
            offsets = subscriber.offsets().values()
            return all(offset is None or offset <= 1 for offset in offsets) and bool(
                subscriber.feed_status and subscriber.feed_status.records
            )

        await eventually(reread, what="the replica read the re-created topic")
        answer = subscriber.check(LOANS, subject)
        assert isinstance(answer, Stale), answer
        assert isinstance(subscriber.check(LOANS, new_uscc()), Stale)

        # Re-verified once the list is published again (the builder's outbox replay).
        await topic.block(subject)  # a new version: the heads move with it
        await topic.heartbeats()
        await eventually(says(subscriber, subject, Blocked), what="blocked again, verified")  # type: ignore[arg-type]


async def test_one_lists_replica_and_key_confirm_nothing_on_another_list(
    broker: EmbeddedBroker, topic: Topic, deployment: Deployment, tmp_path: Path
) -> None:
    """(d) #18 item 9: a bank is given the loans key only; a subject on the power list
    cannot be confirmed with the bank's replica and key."""
    subject = new_uscc()
    normalised = parse_subject_id(subject)[1]
    master = topic.factory.master_key
    key_file = tmp_path / "bank.keys"
    write_measure_keys(key_file, master, (LOANS,))
    assert master.hex() not in key_file.read_text()  # never the master key

    # The power list names the subject under the power key.
    power_hash = topic.factory.subject_hash(subject, POWER)
    loans_ids = SubjectIds.for_measures(key_file, (LOANS,))[LOANS]
    assert loans_ids.digest(normalised).hex() != power_hash  # the leaked key confirms nothing
    assert derive_measure_key(master, POWER) != derive_measure_key(master, LOANS)
    with pytest.raises(ConfigError) as refused:
        SubjectIds.for_measures(key_file, (POWER,))
    assert refused.value.field == "subject_key"

    # And the bank's replica, built with its own key file, answers loans only.
    config = deployment.config(BANK, (LOANS,), bootstrap=broker.bootstrap)
    config = type(config)(**{**config.__dict__, "subject_key": key_file})
    await topic.block(subject)
    await topic.heartbeats()
    with started(Subscriber(config)) as subscriber:
        await eventually(says(subscriber, subject, Blocked), what="blocked on loans")  # type: ignore[arg-type]
        held = {row.subject_hash for row in subscriber.replica().export_rows(LOANS)}
        assert held and power_hash not in held
