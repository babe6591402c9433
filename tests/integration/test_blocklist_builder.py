"""The blocklist builder on the real broker and Postgres: entries that say why and where,
tombstones, heartbeats, the central check at a site, corrections that move a case, and a
redelivered event that publishes nothing new.

The test plays the registry (tests.integration.bureau): the same pure decision, signed
events straight onto the violations topic, so each test controls what the builder reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI

from events.catalogue import Fact, Target, load_catalogue
from events.codec import decode
from events.errors import SignatureRejected
from events.models import (
    BlocklistEntry,
    BlocklistHeartbeat,
    BlocklistLifted,
    CaseFacts,
    CaseFiled,
    Site,
)
from events.privacy import SubjectHasher
from events.signing import TrustStore
from events.subject_keys import measure_hashers
from events.topics import BLOCKLIST_MEASURES, HEARTBEAT_KEY, VIOLATIONS, blocklist_topic
from services.adapters.blocklist_store import MIGRATIONS, SCHEMA, PostgresBlocklistStore
from services.adapters.migrate import migrate
from services.blocklist.queries import CentralChecks
from services.config import Settings
from services.entrypoints.blocklist import run_builder
from services.errors import ConfigError, InvalidInput
from tests.conftest import Stack
from tests.integration.bureau import Bureau
from tests.support import (
    bearer,
    business_premises_facts,
    case_body,
    eventually,
    in_process,
    new_parcel_code,
    new_unit_code,
    read_topic,
)

# Longer than the suite's 30 s per test: the builder waits out heartbeats and rebuilds.
pytestmark = pytest.mark.timeout(120)

POWER, LOANS = "refuse_power_supply", "refuse_loans"
WAIT = 60.0
HOME = "孝义市梧桐镇西村12号"


@pytest.fixture(scope="module")
async def builder(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_builder(settings, stop, heartbeat_every=0.3))
    yield task
    stop.set()
    await asyncio.wait_for(task, 30)


@pytest.fixture(scope="module")
def lists(settings: Settings) -> dict[str, SubjectHasher]:
    """Each published list's hasher, under the key derived for it (events.subject_keys)."""
    master = bytes.fromhex(settings.subject_key.read_text().strip())
    return measure_hashers(master, BLOCKLIST_MEASURES)


@pytest.fixture(scope="module")
def hasher(lists: dict[str, SubjectHasher]) -> SubjectHasher:
    """The power list's: most tests here watch that list."""
    return lists[POWER]


def _facts(site: Site, **changes: object) -> CaseFacts:
    """Business premises on the case's land, at `site`, unless `changes` say otherwise."""
    facts = business_premises_facts(site=site.model_dump(mode="json"))
    return CaseFacts.model_validate({**facts, **changes})


async def _file(bureau: Bureau, site: Site | None = None) -> tuple[CaseFiled, str]:
    body = case_body(("cultivated", "2"))
    if site is not None:
        body["facts"] = business_premises_facts(site=site.model_dump(mode="json"))
    filed, _ = await bureau.file(body)
    return filed, body["subject"]["id"]


async def _records(stack: Stack, measure: str, key: str) -> list[ConsumerRecord[bytes, bytes]]:
    records = await read_topic(stack.kafka, blocklist_topic(measure).name)
    return [r for r in records if r.key == key.encode()]


async def _latest(
    stack: Stack, trust: TrustStore, measure: str, subject_hash: str
) -> BlocklistEntry | None:
    """The subject's current entry on a list: None before any, or after a signed lift."""
    records = await _records(stack, measure, subject_hash)
    if not records or records[-1].value is None:
        return None
    _, entry = decode(records[-1].value, trust)
    if isinstance(entry, BlocklistLifted):
        return None
    assert isinstance(entry, BlocklistEntry)
    return entry


async def _lifted(stack: Stack, trust: TrustStore, measure: str, subject_hash: str) -> bool:
    """Whether the subject's last record on a list is the builder's signed lift (never a
    bare tombstone, which anyone able to write the topic could write)."""
    records = await _records(stack, measure, subject_hash)
    if not records or records[-1].value is None:
        return False
    _, lift = decode(records[-1].value, trust)
    return isinstance(lift, BlocklistLifted) and lift.subject_hash == subject_hash


async def test_filing_lists_the_subject_with_why_and_where_and_revoking_lifts(
    builder: asyncio.Task[None],
    bureau: Bureau,
    stack: Stack,
    trust: TrustStore,
    hasher: SubjectHasher,
    lists: dict[str, SubjectHasher],
    settings: Settings,
    checks: CentralChecks,
) -> None:
    unit = new_unit_code()
    site = Site(location="孝义市兑镇镇东村北侧厂房", real_estate_unit=unit)
    filed, subject_id = await _file(bureau, site)
    subject_hash = hasher.hash_id(subject_id)

    async def listed_everywhere() -> bool:
        return all(
            [await _records(stack, m, lists[m].hash_id(subject_id)) for m in BLOCKLIST_MEASURES]
        )

    await eventually(listed_everywhere, timeout=WAIT, what="an entry on every list")
    [record] = await _records(stack, POWER, subject_hash)
    assert record.value is not None
    envelope, entry = decode(record.value, trust)
    assert isinstance(entry, BlocklistEntry)
    assert envelope.source == "/authorities/blocklist_builder"
    assert envelope.type == "redline.blocklist.entry.v3" and entry.version > 0
    assert entry.measure == POWER and entry.department == "power_supply"
    assert entry.target is Target.site
    assert entry.key_id == hasher.key_id
    # #18 item 9: each list names the subject under its own key; the power list's hash
    # is no hash of any other list, nor the deployment key's (the central check's).
    others = {lists[m].hash_id(subject_id) for m in BLOCKLIST_MEASURES if m != POWER}
    assert subject_hash not in others
    master = SubjectHasher(bytes.fromhex(settings.subject_key.read_text().strip()))
    assert subject_hash != master.hash_id(subject_id)
    [case] = entry.cases
    assert case.case_id == filed.case_id
    power = load_catalogue().department("power_supply").measure(POWER)
    assert case.legal_basis == power.legal_basis
    [decision] = [d for d in filed.starts if d.measure == POWER]
    assert case.rule == decision.rule and Fact.business_premises in case.facts
    assert case.site_hashes == hasher.site_hashes(site)
    assert subject_id not in record.value.decode()  # the ID itself never travels
    assert unit not in record.value.decode()  # nor the site: its hashes only

    loans = await _latest(stack, trust, LOANS, lists[LOANS].hash_id(subject_id))
    assert loans is not None and loans.target is Target.subject
    assert loans.cases[0].site_hashes == []  # held against the subject, wherever

    here = await checks.check(POWER, subject_id, unit)
    assert here.status == "blocked" and [c.case_id for c in here.cases] == [filed.case_id]
    assert here.cases[0].rule == decision.rule and here.target is Target.site
    elsewhere = await checks.check(POWER, subject_id, HOME)
    assert elsewhere.status == "clear" and elsewhere.blocked_elsewhere
    assert elsewhere.cases == [] and elsewhere.masked_name is None
    assert (await checks.check(LOANS, subject_id)).status == "blocked"
    assert (await checks.check(LOANS, subject_id, HOME)).status == "blocked"
    with pytest.raises(InvalidInput) as refused:
        await checks.check(POWER, subject_id)
    assert refused.value.field == "site" and POWER in refused.value.reason

    await bureau.revoke(filed.case_id)

    async def lifted() -> bool:
        records = await _records(stack, POWER, subject_hash)
        return len(records) == 2 and await _lifted(stack, trust, POWER, subject_hash)

    await eventually(lifted, timeout=WAIT, what="a signed lift after the revocation")
    answer = await checks.check(POWER, subject_id, unit)
    assert answer.status == "clear" and answer.cases == [] and not answer.blocked_elsewhere


async def test_a_second_case_extends_the_entry_and_lifting_one_keeps_the_other(
    builder: asyncio.Task[None],
    bureau: Bureau,
    stack: Stack,
    trust: TrustStore,
    hasher: SubjectHasher,
) -> None:
    first, subject_id = await _file(bureau)
    body = case_body(("cultivated", "3"))
    body["subject"]["id"] = subject_id
    second, _ = await bureau.file(body)
    subject_hash = hasher.hash_id(subject_id)

    async def latest_cases() -> list[str] | None:
        entry = await _latest(stack, trust, POWER, subject_hash)
        return None if entry is None else sorted(c.case_id for c in entry.cases)

    async def both() -> bool:
        return await latest_cases() == sorted([first.case_id, second.case_id])

    await eventually(both, timeout=WAIT, what="one entry naming both cases")
    await bureau.revoke(first.case_id)

    async def only_second() -> bool:
        return await latest_cases() == [second.case_id]

    await eventually(only_second, timeout=WAIT, what="the entry keeps the second case")


async def test_a_unit_on_a_parcel_coded_case_is_blocked_and_a_units_neighbour_is_clear(
    builder: asyncio.Task[None], bureau: Bureau, db: asyncpg.Pool, checks: CentralChecks
) -> None:
    parcel = new_parcel_code()
    whole_parcel = Site(location="某村空地上的厂房", parcel_code=parcel)
    by_parcel, parcel_subject = await _file(bureau, whole_parcel)
    unit = new_unit_code(parcel)
    one_unit = Site(location="某村另一处厂房", real_estate_unit=unit)
    by_unit, unit_subject = await _file(bureau, one_unit)

    async def listed() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM blocklist.blocks WHERE measure = $1 AND case_id = ANY($2)",
            POWER,
            [by_parcel.case_id, by_unit.case_id],
        )
        return bool(count == 2)

    await eventually(listed, timeout=WAIT, what="both cases on the power list")
    on_parcel = await checks.check(POWER, parcel_subject, new_unit_code(parcel))
    assert on_parcel.status == "blocked"
    neighbour = await checks.check(POWER, unit_subject, new_unit_code(parcel))
    assert neighbour.status == "clear" and neighbour.blocked_elsewhere
    assert (await checks.check(POWER, unit_subject, unit)).status == "blocked"


async def test_a_correction_that_moves_the_site_moves_the_block(
    builder: asyncio.Task[None],
    bureau: Bureau,
    stack: Stack,
    trust: TrustStore,
    hasher: SubjectHasher,
    checks: CentralChecks,
    db: asyncpg.Pool,
) -> None:
    old_unit, new_unit = new_unit_code(), new_unit_code()
    old_site = Site(location="孝义市兑镇镇东村北侧厂房", real_estate_unit=old_unit)
    new_site = Site(location="孝义市兑镇镇南村厂房", real_estate_unit=new_unit)
    filed, subject_id = await _file(bureau, old_site)
    subject_hash = hasher.hash_id(subject_id)

    async def held_at(site: Site) -> bool:
        entry = await _latest(stack, trust, POWER, subject_hash)
        return entry is not None and entry.cases[0].site_hashes == hasher.site_hashes(site)

    await eventually(lambda: held_at(old_site), timeout=WAIT, what="the block at the old site")
    first_since = await db.fetchval(
        "SELECT since FROM blocklist.blocks WHERE measure = $1 AND case_id = $2",
        POWER,
        filed.case_id,
    )
    corrected = await bureau.correct(filed.case_id, _facts(new_site))
    assert POWER in corrected.ends and POWER in [d.measure for d in corrected.starts]

    await eventually(lambda: held_at(new_site), timeout=WAIT, what="the block at the new site")
    moved = await checks.check(POWER, subject_id, old_unit)
    assert moved.status == "clear" and moved.blocked_elsewhere
    assert (await checks.check(POWER, subject_id, new_unit)).status == "blocked"
    assert (await checks.check(POWER, subject_id, "孝义市兑镇镇南村厂房")).status == "blocked"
    row = await db.fetchrow(
        "SELECT since, lifted_at, applied_by FROM blocklist.blocks "
        "WHERE measure = $1 AND case_id = $2",
        POWER,
        filed.case_id,
    )
    assert row["lifted_at"] is None and row["since"] > first_since  # the same row, applied anew

    # The facts no longer meet the measure: it ends; they meet it again: it starts again.
    # A residence on the land, with no project: no supply measure's condition holds.
    await bureau.correct(filed.case_id, _facts(new_site, project=None, building_use="residence"))

    async def lifted() -> bool:
        return await _lifted(stack, trust, POWER, subject_hash)

    await eventually(lifted, timeout=WAIT, what="the block ended by the correction")
    assert (await checks.check(POWER, subject_id, new_unit)).status == "clear"
    await bureau.correct(filed.case_id, _facts(new_site))
    await eventually(lambda: held_at(new_site), timeout=WAIT, what="the block applied again")
    assert (await checks.check(POWER, subject_id, new_unit)).status == "blocked"


async def test_an_unused_land_case_lists_nobody(
    builder: asyncio.Task[None], bureau: Bureau, db: asyncpg.Pool
) -> None:
    unused, _ = await bureau.file(case_body(("unused", "0.5")))
    assert unused.starts == []

    async def recorded() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) FROM blocklist.cases WHERE case_id = $1", unused.case_id
            )
        )

    await eventually(recorded, timeout=WAIT, what="the unused-land case read")
    assert not await db.fetchval(
        "SELECT count(*) FROM blocklist.blocks WHERE case_id = $1", unused.case_id
    )  # recorded in the same transaction as any block it started: none


async def test_heartbeats_reach_every_partition_and_advance(
    builder: asyncio.Task[None], stack: Stack, trust: TrustStore, lists: dict[str, SubjectHasher]
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
                assert beat.partition == record.partition
                assert beat.key_id == lists[measure].key_id  # each list its own key
                assert beat.entries is not None and beat.digest is not None
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
    builder: asyncio.Task[None], bureau: Bureau, db: asyncpg.Pool
) -> None:
    filed, raw = await bureau.file(case_body(("cultivated", "2")))

    async def published() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM blocklist.blocks WHERE case_id = $1 AND measure = $2",
            filed.case_id,
            POWER,
        )
        return bool(count)

    await eventually(published, timeout=WAIT, what="the case on the list")
    before = await db.fetchval("SELECT count(*) FROM blocklist.outbox")
    key = filed.case_id.encode()
    await bureau.producer.send_and_wait(VIOLATIONS.name, raw, key=key)
    # A marker case sent under the same key lands on the same partition, after the
    # duplicate: once it is listed, the duplicate was read before it.
    marker, marker_raw = await bureau.file(case_body(("cultivated", "2")), publish=False)
    await bureau.producer.send_and_wait(VIOLATIONS.name, marker_raw, key=key)

    async def marker_listed() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) FROM blocklist.blocks WHERE case_id = $1", marker.case_id
            )
        )

    await eventually(marker_listed, timeout=WAIT, what="the marker case listed")
    new_rows = await db.fetch(
        "SELECT event_type FROM blocklist.outbox ORDER BY position OFFSET $1", before
    )
    assert len(new_rows) == len(BLOCKLIST_MEASURES)  # the marker's entries, nothing more


async def test_central_check_over_http_answers_at_a_site_and_refuses_bad_input(
    builder: asyncio.Task[None],
    bureau: Bureau,
    settings: Settings,
    registry_app: FastAPI,
    db: asyncpg.Pool,
) -> None:
    unit = new_unit_code()
    filed, subject = await _file(
        bureau, Site(location="孝义市兑镇镇东村厂房", real_estate_unit=unit)
    )

    async def listed() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) FROM blocklist.blocks WHERE case_id = $1 AND measure = $2",
                filed.case_id,
                LOANS,
            )
        )

    await eventually(listed, timeout=WAIT, what="the case on the lists")
    async with in_process(registry_app, bearer(settings.home, "subscriber")) as client:
        here = await client.get(
            "/v1/checks", params={"measure": POWER, "subject": subject, "site": unit}
        )
        there = await client.get(
            "/v1/checks", params={"measure": POWER, "subject": subject, "site": HOME}
        )
        loan = await client.get(
            "/v1/checks", params={"measure": LOANS, "subject": subject, "site": HOME}
        )
        no_site = await client.get("/v1/checks", params={"measure": POWER, "subject": subject})
        bad_check = await client.get(
            "/v1/checks",
            params={"measure": POWER, "subject": "91141181MA0000000X", "site": unit},
        )
        unknown = await client.get(
            "/v1/checks", params={"measure": "refuse_sunshine", "subject": "91141181MA0000000X"}
        )
        missing = await client.get("/v1/checks", params={"measure": POWER})
    assert here.status_code == 200 and here.json()["status"] == "blocked"
    assert here.json()["cases"][0]["facts"] and here.json()["target"] == "site"
    assert there.status_code == 200
    assert there.json()["status"] == "clear" and there.json()["blocked_elsewhere"] is True
    assert there.json()["cases"] == [] and there.json()["masked_name"] is None
    assert loan.json()["status"] == "blocked" and loan.json()["target"] == "subject"
    assert no_site.status_code == 422
    assert no_site.json()["errors"][0]["field"] == "site"
    assert "required for refuse_power_supply" in no_site.json()["errors"][0]["reason"]
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
