"""The blocklist builder on the real broker and Postgres: entries, tombstones, heartbeats,
the central check, and a redelivered event that publishes nothing new."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from events.catalogue import load_catalogue
from events.codec import decode
from events.errors import SignatureRejected
from events.models import BlocklistEntry, BlocklistHeartbeat, CaseDetails
from events.privacy import SubjectHasher
from events.signing import TrustStore
from events.topics import BLOCKLIST_MEASURES, HEARTBEAT_KEY, VIOLATIONS, blocklist_topic
from services.access import TokenStore, dev_token
from services.adapters.blocklist_store import MIGRATIONS, SCHEMA, PostgresBlocklistStore
from services.adapters.migrate import migrate
from services.blocklist.queries import CentralChecks
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.entrypoints.api import create_app
from services.entrypoints.blocklist import run_builder
from services.errors import ConfigError
from services.registry.domain import Step
from services.registry.handlers import STEP_EVENTS, Registry
from services.runtime.processes import spawn, stop_processes
from tests.conftest import Stack
from tests.support import case_body, eventually, read_topic

POWER = "refuse_power_supply"
WAIT = 60.0
REVOCATION = {
    "court": "孝义市人民法院",
    "decision_no": "(2026)晋1181行初9号",
    "revoked_on": "2026-11-20",
}


@pytest.fixture(scope="module")
def registry_relay(settings: Settings, trust: TrustStore, tmp_path_factory: Any) -> Iterator[None]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "DATABASE_URL": settings.database_url or "",
        "REDLINE_HOME": str(settings.home),
    }
    proc: subprocess.Popen[bytes] = spawn(
        [sys.executable, "-m", "services.entrypoints.relay"],
        log_path=tmp_path_factory.mktemp("logs") / "relay.log",
        env=env,
    )
    yield
    stop_processes([proc])


@pytest.fixture(scope="module")
async def builder(settings: Settings, registry_relay: None) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_builder(settings, stop, heartbeat_every=0.3))
    yield task
    stop.set()
    await asyncio.wait_for(task, 30)


@pytest.fixture(scope="module")
def hasher(settings: Settings, trust: TrustStore) -> SubjectHasher:
    return SubjectHasher.from_file(settings.subject_key)


async def _file(registry: Registry) -> tuple[str, str]:
    body = case_body(("cultivated", "2"))
    case_id = (await registry.file_case(CaseDetails.model_validate(body))).case_id
    return case_id, body["subject"]["id"]


async def _records(stack: Stack, measure: str, key: str) -> list[ConsumerRecord[bytes, bytes]]:
    records = await read_topic(stack.kafka, blocklist_topic(measure).name)
    return [r for r in records if r.key == key.encode()]


async def test_filing_lists_the_subject_on_every_utility_and_bank_list_and_revoking_lifts(
    builder: asyncio.Task[None],
    registry: Registry,
    stack: Stack,
    trust: TrustStore,
    hasher: SubjectHasher,
    checks: CentralChecks,
) -> None:
    case_id, subject_id = await _file(registry)
    subject_hash = hasher.hash_id(subject_id)

    async def listed_everywhere() -> bool:
        return all([await _records(stack, m, subject_hash) for m in BLOCKLIST_MEASURES])

    await eventually(listed_everywhere, timeout=WAIT, what="an entry on every list")
    [record] = await _records(stack, POWER, subject_hash)
    assert record.value is not None
    envelope, entry = decode(record.value, trust)
    assert isinstance(entry, BlocklistEntry)
    assert envelope.source == "/authorities/blocklist_builder"
    assert entry.measure == POWER and entry.department == "power_supply"
    assert entry.key_id == hasher.key_id
    assert [c.case_id for c in entry.cases] == [case_id]
    power = load_catalogue().department("power_supply").measure(POWER)
    assert entry.cases[0].legal_basis == power.legal_basis
    assert subject_id not in record.value.decode()  # the ID itself never travels
    assert (await checks.check(POWER, subject_id)).status == "blocked"

    await registry.record_step(
        case_id, Step.revocation, STEP_EVENTS[Step.revocation][0].model_validate(REVOCATION)
    )

    async def tombstoned() -> bool:
        records = await _records(stack, POWER, subject_hash)
        return len(records) == 2 and records[-1].value is None

    await eventually(tombstoned, timeout=WAIT, what="a tombstone after the revocation")
    answer = await checks.check(POWER, subject_id)
    assert answer.status == "clear" and answer.cases == []


async def test_a_second_case_extends_the_entry_and_lifting_one_keeps_the_other(
    builder: asyncio.Task[None],
    registry: Registry,
    stack: Stack,
    trust: TrustStore,
    hasher: SubjectHasher,
) -> None:
    first, subject_id = await _file(registry)
    body = case_body(("cultivated", "3"))
    body["subject"]["id"] = subject_id
    second = (await registry.file_case(CaseDetails.model_validate(body))).case_id
    subject_hash = hasher.hash_id(subject_id)

    async def latest_cases() -> list[str] | None:
        records = await _records(stack, POWER, subject_hash)
        if not records or records[-1].value is None:
            return None
        _, entry = decode(records[-1].value, trust)
        assert isinstance(entry, BlocklistEntry)
        return sorted(c.case_id for c in entry.cases)

    async def both() -> bool:
        return await latest_cases() == sorted([first, second])

    await eventually(both, timeout=WAIT, what="one entry naming both cases")
    await registry.record_step(
        first, Step.revocation, STEP_EVENTS[Step.revocation][0].model_validate(REVOCATION)
    )

    async def only_second() -> bool:
        return await latest_cases() == [second]

    await eventually(only_second, timeout=WAIT, what="the entry keeps the second case")


async def test_heartbeats_reach_every_partition_and_advance(
    builder: asyncio.Task[None], stack: Stack, trust: TrustStore, hasher: SubjectHasher
) -> None:
    async def beats() -> dict[tuple[str, int], datetime]:
        latest: dict[tuple[str, int], datetime] = {}
        for measure in BLOCKLIST_MEASURES:
            for record in await _records(stack, measure, HEARTBEAT_KEY):
                assert record.value is not None
                try:
                    _, beat = decode(record.value, trust)
                except SignatureRejected:
                    continue  # another test's builder, under a key this trust lacks
                assert isinstance(beat, BlocklistHeartbeat)
                assert beat.partition == record.partition and beat.key_id == hasher.key_id
                latest[(measure, beat.partition)] = beat.as_of
        return latest

    every = {(m, p) for m in BLOCKLIST_MEASURES for p in range(blocklist_topic(m).partitions)}
    first: dict[tuple[str, int], datetime] = {}

    async def all_partitions() -> bool:
        first.update(await beats())
        return set(first) == every

    await eventually(all_partitions, timeout=WAIT, what="a heartbeat on every partition")

    async def advanced() -> bool:
        later = await beats()
        return all(later[key] > first[key] for key in every)

    await eventually(advanced, timeout=WAIT, what="newer heartbeats")


async def test_a_redelivered_case_filed_publishes_nothing_new(
    builder: asyncio.Task[None],
    registry: Registry,
    stack: Stack,
    db: asyncpg.Pool,
) -> None:
    case_id, _ = await _file(registry)

    async def published() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM blocklist.blocks WHERE case_id = $1 AND measure = $2",
            case_id,
            POWER,
        )
        return bool(count)

    await eventually(published, timeout=WAIT, what="the case on the list")
    before = await db.fetchval("SELECT count(*) FROM blocklist.outbox")
    filed = await db.fetchval(
        "SELECT value FROM outbox WHERE key = $1 AND event_type = 'redline.case.filed.v2'",
        case_id,
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(VIOLATIONS.name, filed, key=case_id.encode())
    finally:
        await producer.stop()
    marker, _ = await _file(registry)  # once this is listed, the duplicate was consumed before

    async def marker_listed() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) FROM blocklist.blocks WHERE case_id = $1", marker)
        )

    await eventually(marker_listed, timeout=WAIT, what="the marker case listed")
    new_rows = await db.fetch(
        "SELECT event_type FROM blocklist.outbox ORDER BY position OFFSET $1", before
    )
    assert len(new_rows) == len(BLOCKLIST_MEASURES)  # the marker's entries, nothing more


async def test_central_check_over_http_refuses_bad_input_naming_the_field(
    settings: Settings,
    registry: Registry,
    queries: DepartmentQueries,
    checks: CentralChecks,
) -> None:
    app = create_app(settings, registry, queries, checks, TokenStore.load(settings.api_tokens))
    transport = httpx.ASGITransport(app=app)
    subscriber = {"Authorization": f"Bearer {dev_token(settings.home, 'subscriber')}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://registry", headers=subscriber
    ) as client:
        bad_check = await client.get(
            "/v1/checks", params={"measure": POWER, "subject": "91141181MA0000000X"}
        )
        unknown = await client.get(
            "/v1/checks", params={"measure": "refuse_sunshine", "subject": "91141181MA0000000X"}
        )
        missing = await client.get("/v1/checks", params={"measure": POWER})
    assert bad_check.status_code == 422
    assert bad_check.json()["errors"][0]["field"] == "subject"
    assert "check character" in bad_check.json()["errors"][0]["reason"]
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "measure"
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "subject"


async def test_a_builder_with_another_subject_key_refuses_to_start(
    own_database: Settings, tmp_path: Path
) -> None:
    _, database = own_database.require()
    await migrate(database, package=MIGRATIONS, schema=SCHEMA)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    try:
        first = SubjectHasher.from_file(own_database.subject_key).key_id
        assert await PostgresBlocklistStore(pool).claim_subject_key(first) == first
    finally:
        await pool.close()
    other_key = tmp_path / "other.key"
    SubjectHasher.create_file(other_key)
    rotated = dataclasses.replace(own_database, subject_key_path=other_key)
    with pytest.raises(ConfigError, match="built under subject key " + first):
        await run_builder(rotated, asyncio.Event())
