"""The outbox relay on the real broker: order per case, kill -9 mid-run, broker restart, replay."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import REGISTRY

from demo import sign_off_jointly
from events.codec import decode
from events.errors import EventError
from events.models import CaseDetails, RestorationDetails
from events.signing import TrustStore
from events.topics import VIOLATIONS
from services.adapters.kafka import ensure_topics
from services.adapters.publisher import MAX_RECORD_BYTES, KafkaPublisher
from services.bootstrap import bootstrap_registry, registry_store
from services.config import Settings
from services.outbox.relay import OutboxRelay
from services.registry.domain import Step
from services.registry.handlers import STEP_EVENTS, Registry
from services.runtime.embedded import EmbeddedBroker
from services.runtime.processes import is_running
from tests.conftest import running_broker
from tests.support import case_body, eventually, read_topic, service_env

# Longer than the suite's 30 s per test: a relay process killed and started again mid-run.
pytestmark = pytest.mark.timeout(120)


async def _pending(database_url: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE sent_at IS NULL) AS pending, "
            "count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent FROM outbox"
        )
    finally:
        await conn.close()
    assert row is not None
    return row["pending"], row["sent"]


async def _outbox_ids(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return [row["event_id"] for row in await conn.fetch("SELECT event_id FROM outbox")]
    finally:
        await conn.close()


async def _published_ids(bootstrap: str, trust: TrustStore) -> list[str]:
    """Ids of every verified event on the violations topic, duplicates included.

    Other tests share the broker and publish forgeries on purpose: those are left out.
    """
    ids = []
    for record in await read_topic(bootstrap, VIOLATIONS.name):
        try:
            envelope, _ = decode(record.value or b"", trust)
        except EventError:
            continue
        ids.append(envelope.id)
    return ids


async def _file_cases(registry: Registry, count: int) -> list[str]:
    summaries = [
        await registry.file_case(CaseDetails.model_validate(case_body())) for _ in range(count)
    ]
    return [summary.case_id for summary in summaries]


@pytest.fixture
async def own_registry(own_database: Settings) -> AsyncIterator[Registry]:
    async with bootstrap_registry(own_database) as registry:
        yield registry


async def _run_relay(settings: Settings, stop: asyncio.Event) -> None:
    kafka, _ = settings.require()
    publisher = KafkaPublisher(kafka)
    try:
        async with registry_store(settings) as store:
            await OutboxRelay(store.outbox, publisher, idle_wait=0.2, max_backoff=0.5).run(stop)
    finally:
        await publisher.close()


@asynccontextmanager
async def relaying(settings: Settings) -> AsyncIterator[asyncio.Event]:
    """An in-process relay for the test's body; the yielded event stops it early."""
    stop = asyncio.Event()
    relay = asyncio.create_task(_run_relay(settings, stop))
    try:
        yield stop
    finally:
        stop.set()
        await relay


async def _drained(settings: Settings, what: str) -> None:
    database = settings.database_url or ""

    async def empty() -> bool:
        return (await _pending(database))[0] == 0

    await eventually(empty, timeout=60, what=what)


async def test_events_of_a_case_reach_the_topic_in_order(
    own_database: Settings, own_registry: Registry, trust: TrustStore
) -> None:
    async with relaying(own_database):
        case_id = (
            await own_registry.file_case(
                CaseDetails.model_validate(case_body(("permanent_basic_farmland", "8")))
            )
        ).case_id
        bodies = {
            Step.penalty: {
                "decision_no": "罚7",
                "decided_on": "2026-10-20",
                "fine_yuan": "1000",
                "summary": "罚款",
            },
            Step.rectification: {"action": "demolition", "completed_on": "2026-10-25"},
            Step.restoration: {
                "verified_on": "2026-11-01",
                "natural_resources_officer": "李",
                "agriculture_officer": "王",
            },
            Step.closure: {"closed_on": "2026-11-02", "reason": "验收合格"},
        }
        for step, body in bodies.items():
            if step is Step.restoration:  # both bodies sign off
                await sign_off_jointly(own_registry, case_id, RestorationDetails(**body))
                continue
            details = STEP_EVENTS[step][0].model_validate(body)
            await own_registry.record_step(case_id, step, details)
        await _drained(own_database, "outbox drained")

    # Case ids restart in every database: keep only this database's events.
    ours = set(await _outbox_ids(own_database.database_url or ""))
    records = [
        r
        for r in await read_topic(own_database.kafka_bootstrap or "", VIOLATIONS.name)
        if r.key == case_id.encode() and decode(r.value or b"", trust)[0].id in ours
    ]
    types = [decode(r.value or b"", trust)[0].type for r in records]
    assert types == [
        "redline.case.filed.v3",
        "redline.accountability.triggered.v2",
        "redline.case.penalty_decided.v2",
        "redline.case.rectification_recorded.v1",
        "redline.case.restoration_verified.v1",
        "redline.case.closed.v1",
    ]
    assert len({r.partition for r in records}) == 1


def _start_relay_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = service_env(settings, REDLINE_RELAY_BATCH="10")
    with log.open("ab") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "services.entrypoints.relay"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def test_a_relay_killed_mid_run_loses_nothing(
    own_database: Settings, own_registry: Registry, trust: TrustStore, tmp_path: Path
) -> None:
    database = own_database.database_url or ""
    await _file_cases(own_registry, 1500)
    expected = set(await _outbox_ids(database))
    assert len(expected) == 1500

    first = _start_relay_process(own_database, tmp_path / "relay.log")
    try:
        # A tight poll: the kill must land while the relay is still working.
        conn = await asyncpg.connect(database)
        try:
            deadline = time.monotonic() + 60
            while not await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"):
                assert time.monotonic() < deadline, "the relay published nothing"
                await asyncio.sleep(0.005)
        finally:
            await conn.close()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert not is_running(first.pid)
    pending_at_kill, _ = await _pending(database)
    assert pending_at_kill > 0, "the relay finished before it was killed; nothing was tested"

    second = _start_relay_process(own_database, tmp_path / "relay.log")
    try:
        await _drained(own_database, "second relay draining the outbox")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0

    published = [
        event_id
        for event_id in await _published_ids(own_database.kafka_bootstrap or "", trust)
        if event_id in expected
    ]
    assert set(published) == expected, f"lost: {len(expected - set(published))}"
    # At least once: only the one batch (10) in flight at the kill may go out twice, and
    # consumers dedup those on the event id.
    doubled = sum(n - 1 for n in Counter(published).values())
    assert doubled <= 10


@dataclass
class Lonely:
    """A broker of the test's own, to pause, stop and start again, and the test's database."""

    broker: EmbeddedBroker
    settings: Settings

    @property
    def database(self) -> str:
        return self.settings.database_url or ""


@pytest.fixture
async def lonely(own_database: Settings, tmp_path: Path) -> AsyncIterator[Lonely]:
    with running_broker(tmp_path / "broker") as broker:
        await ensure_topics(broker.bootstrap)
        database = own_database.database_url or ""
        yield Lonely(broker, own_database.with_endpoints(broker.bootstrap, database))


@asynccontextmanager
async def _relaying_after(lonely: Lonely, registry: Registry, cases: int) -> AsyncIterator[None]:
    """A relay running on `lonely`, `cases` new cases filed and published already."""
    async with relaying(lonely.settings):
        await _file_cases(registry, cases)
        await _drained(lonely.settings, "first cases published")
        yield


async def test_a_paused_broker_gets_everything_once_it_resumes(
    lonely: Lonely, own_registry: Registry, trust: TrustStore
) -> None:
    async with _relaying_after(lonely, own_registry, cases=2):
        lonely.broker.pause()
        try:
            await _file_cases(own_registry, 3)
            assert (await _pending(lonely.database))[0] == 3
        finally:
            lonely.broker.resume()
        await _drained(lonely.settings, "outbox drained after the broker resumed")
    published = set(await _published_ids(lonely.broker.bootstrap, trust))
    assert published == set(await _outbox_ids(lonely.database))


async def test_a_broker_that_lost_its_memory_is_brought_up_to_date(
    lonely: Lonely, own_registry: Registry, trust: TrustStore
) -> None:
    async with _relaying_after(lonely, own_registry, cases=3):
        lonely.broker.stop()
        await _file_cases(own_registry, 3)
        assert (await _pending(lonely.database))[0] == 3
        lonely.broker.start()
        await _drained(lonely.settings, "outbox drained after the broker returned")

    # The new broker started empty; the relay saw a new cluster id and published it all.
    published = await _published_ids(lonely.broker.bootstrap, trust)
    assert sorted(published) == sorted(await _outbox_ids(lonely.database))


async def test_replay_from_a_position_publishes_again_and_nothing_else(
    lonely: Lonely, own_registry: Registry, trust: TrustStore
) -> None:
    async with _relaying_after(lonely, own_registry, cases=4):
        async with registry_store(lonely.settings) as store:
            assert await store.outbox.replay_from(position=3, since=None) == 2
        await _drained(lonely.settings, "replay published")
    conn = await asyncpg.connect(lonely.database)
    try:
        by_position = [
            r["event_id"] for r in await conn.fetch("SELECT event_id FROM outbox ORDER BY position")
        ]
    finally:
        await conn.close()
    copies = Counter(await _published_ids(lonely.broker.bootstrap, trust))
    assert [copies[event_id] for event_id in by_position] == [1, 1, 2, 2]


async def test_two_relays_take_turns_and_publish_each_event_once(
    own_database: Settings, own_registry: Registry, trust: TrustStore
) -> None:
    database = own_database.database_url or ""
    async with relaying(own_database), relaying(own_database) as second:
        await _file_cases(own_registry, 300)
        await _drained(own_database, "both relays running, outbox drained")
        second.set()  # the leader or the standby goes; whichever is left publishes
        await _file_cases(own_registry, 50)
        await _drained(own_database, "the remaining relay took over")
    ours = set(await _outbox_ids(database))
    copies = Counter(
        event_id
        for event_id in await _published_ids(own_database.kafka_bootstrap or "", trust)
        if event_id in ours
    )
    assert set(copies) == ours
    assert max(copies.values()) == 1, "an event was published twice"


async def _lead_holder(database_url: str) -> int | None:
    """The backend holding the relay's lead: with no filing in flight, the only advisory
    lock held is the relay's session lock."""
    conn = await asyncpg.connect(database_url)
    try:
        pid: int | None = await conn.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        )
        return pid
    finally:
        await conn.close()


async def test_a_relay_whose_lead_connection_dies_wins_the_lead_again_and_drains(
    own_database: Settings, own_registry: Registry, trust: TrustStore
) -> None:
    """The relay reads and marks over the connection that holds its lead: when the server
    ends that connection, the relay gives the lead up, wins it on a new one, and sends
    everything."""
    database = own_database.database_url or ""
    async with relaying(own_database):
        await _file_cases(own_registry, 20)
        await _drained(own_database, "first cases published")
        first = await _lead_holder(database)
        assert first is not None, "no backend holds the relay's lead"
        conn = await asyncpg.connect(database)
        try:
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await conn.close()
        await _file_cases(own_registry, 20)
        await _drained(own_database, "cases filed after the lead connection died published")
        again = await _lead_holder(database)
        assert again is not None and again != first
    ours = set(await _outbox_ids(database))
    published = set(await _published_ids(own_database.kafka_bootstrap or "", trust))
    assert ours <= published


# -- Quarantine (#18) ----------------------------------------------------------------------


async def _settled(database_url: str) -> bool:
    """Every event sent or quarantined."""
    conn = await asyncpg.connect(database_url)
    try:
        return not await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND quarantined_at IS NULL"
        )
    finally:
        await conn.close()


async def test_an_event_the_broker_refuses_for_good_is_quarantined_and_the_rest_delivered(
    own_database: Settings,
) -> None:
    """Poison rows among the queue, keyed like the rows around them: one for a topic name
    the broker answers INVALID_TOPIC to (Tansu does; it takes any valid name, creating the
    topic, and ignores max.message.bytes), one larger than a Kafka broker's default
    message.max.bytes. Both are set aside with the reason and never sent; every row
    behind them goes out, those of the same key included, in order."""
    database = own_database.database_url or ""
    topic = f"redline.test.quarantine.{uuid.uuid4().hex[:12]}"
    marker = uuid.uuid4().hex.encode()
    rows = [(topic, "k1", marker + b"-1"), (topic, "k2", marker + b"-2")]
    rows += [("redline violations!", "k1", marker + b"-bad-topic")]
    rows += [(topic, "k1", marker + b"-3")]
    rows += [(topic, "k1", marker + b"x" * MAX_RECORD_BYTES)]
    rows += [(topic, "k1", marker + b"-4"), (topic, "k2", marker + b"-5")]
    conn = await asyncpg.connect(database)
    try:
        await conn.executemany(
            "INSERT INTO outbox (event_id, event_type, topic, key, value) "
            "VALUES ($1, 'redline.test.v1', $2, $3, $4)",
            [(f"test-{uuid.uuid4()}", *row) for row in rows],
        )
    finally:
        await conn.close()

    async with relaying(own_database):
        await eventually(lambda: _settled(database), timeout=60, what="every row settled")

    conn = await asyncpg.connect(database)
    try:
        aside = await conn.fetch(
            "SELECT topic, key, sent_at, quarantine_reason FROM outbox "
            "WHERE quarantined_at IS NOT NULL ORDER BY position"
        )
    finally:
        await conn.close()
    assert [(r["topic"], r["key"], r["sent_at"]) for r in aside] == [
        ("redline violations!", "k1", None),
        (topic, "k1", None),
    ]
    assert "InvalidTopicError" in aside[0]["quarantine_reason"]
    assert "MessageSizeTooLargeError" in aside[1]["quarantine_reason"]
    records = await read_topic(own_database.kafka_bootstrap or "", topic)
    by_key = {key: [r.value for r in records if r.key == key.encode()] for key in ("k1", "k2")}
    assert by_key == {
        "k1": [marker + b"-1", marker + b"-3", marker + b"-4"],
        "k2": [marker + b"-2", marker + b"-5"],
    }
    gauge = REGISTRY.get_sample_value("redline_outbox_quarantined_events", {"outbox": "registry"})
    assert gauge == 2
