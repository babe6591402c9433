"""A department scaled out to two workers of one consumer group: each event takes effect
once, whichever worker is handed it, also while one joins or leaves (a rebalance)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import asyncpg
import pytest

from events.authorities import NATURAL_RESOURCES
from events.codec import decode
from events.models import MeasureApplied
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS
from services.adapters.department_store import PostgresDepartmentStore, department_schema
from services.adapters.migrate import migrate
from services.config import Settings
from services.departments.ports import Consumed
from services.entrypoints.audit_commands import verify_trails
from services.feedback.handlers import answers_in
from services.runtime.devkeys import ensure_dev_keys, load_dev_signer
from services.runtime.processes import stop_process, stop_processes
from tests.conftest import Stack
from tests.integration.test_departments import WAIT, _filed, _publish, _start_department
from tests.support import eventually, group_members, read_topic

# Longer than the suite's 30 s per test: two faust workers, one joining and one leaving, with
# rebalances.
pytestmark = pytest.mark.timeout(180)

CODE = "gas_supply"
SCHEMA = department_schema(CODE)
GROUP = f"redline-department-{CODE}"


async def _claim_waiting(conn: asyncpg.Connection) -> bool:
    """Whether some backend is blocked inserting into the consumed-events table."""
    waiting = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' "
        "AND query LIKE 'INSERT INTO ' || $1 || '.consumed_events%'",
        SCHEMA,
    )
    return bool(waiting)


async def test_a_second_claim_of_an_event_waits_for_the_first_and_finds_it_taken(
    own_database: Settings,
) -> None:
    """What keeps two workers from both acting on one event during a rebalance."""
    database = own_database.database_url or ""
    await migrate(database, package="services.departments.migrations", schema=SCHEMA)
    pool = await asyncpg.create_pool(database, min_size=2, max_size=2)
    watcher = await asyncpg.connect(database)
    store = PostgresDepartmentStore(pool, CODE)
    event, other = (Consumed(str(uuid.uuid4()), "redline.case.filed.v1") for _ in range(2))

    async def second_worker() -> set[str]:
        async with store.transaction() as tx:
            return await tx.claim(sorted([event, other]))

    try:
        async with store.transaction() as first:
            assert await first.claim([event]) == {event.event_id}
            second = asyncio.create_task(second_worker())
            await eventually(lambda: _claim_waiting(watcher), what="the second claim waiting")
            assert not second.done()
        assert await asyncio.wait_for(second, 30) == {other.event_id}
        assert await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.consumed_events") == 2
    finally:
        await watcher.close()
        await pool.close()


async def test_a_worker_joining_and_one_leaving_mid_stream_lose_and_double_nothing(
    settings: Settings, stack: Stack, db: asyncpg.Pool, trust: TrustStore
) -> None:
    ensure_dev_keys(settings.home)
    signer = load_dev_signer(settings.home, NATURAL_RESOURCES)
    logs = settings.home / "logs-department-workers"
    logs.mkdir(exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    waves = [[f"RL-WORKERS-{tag}-{wave}-{n:02d}" for n in range(20)] for wave in range(3)]
    cases = [case_id for wave in waves for case_id in wave]

    async def blocked(case_ids: list[str]) -> bool:
        try:
            found = await db.fetchval(
                f"SELECT count(DISTINCT case_id) FROM {SCHEMA}.blocks "
                "WHERE case_id = ANY($1::text[])",
                case_ids,
            )
        except asyncpg.UndefinedTableError:
            return False
        return bool(found == len(case_ids))

    async def publish(case_ids: list[str]) -> None:
        await _publish(stack, [(case_id, _filed(case_id, signer)) for case_id in case_ids])

    first = _start_department(settings, CODE, logs)
    second: subprocess.Popen[bytes] | None = None
    try:
        await publish(waves[0])
        await eventually(lambda: blocked(waves[0]), timeout=WAIT, what="the first worker blocking")
        second = _start_department(settings, CODE, logs)

        async def both_members() -> bool:
            return await group_members(stack.kafka, GROUP) == 2

        await eventually(both_members, timeout=WAIT, what="the second worker joining the group")
        await publish(waves[1])
        stop_process(first)  # leaves the group: the second takes every partition
        await publish(waves[2])
        await eventually(lambda: blocked(cases), timeout=WAIT, what="every case blocked")

        async def acknowledged() -> bool:
            return len(await _applied_acks(stack, trust, cases)) >= len(cases)

        await eventually(acknowledged, timeout=WAIT, what="every block acknowledged")
    finally:
        stop_processes([p for p in (first, second) if p is not None])

    rows = await db.fetch(
        f"SELECT case_id, count(*) AS n FROM {SCHEMA}.blocks WHERE case_id = ANY($1::text[]) "
        "GROUP BY case_id",
        cases,
    )
    assert sorted((row["case_id"], row["n"]) for row in rows) == [(c, 1) for c in sorted(cases)]
    held = await db.fetch(
        f"SELECT DISTINCT target, rule <> '' AS why FROM {SCHEMA}.blocks "
        "WHERE case_id = ANY($1::text[])",
        cases,
    )
    assert [tuple(row) for row in held] == [("site", True)]  # the premises, with the rule
    assert sorted(await _applied_acks(stack, trust, cases)) == sorted(cases)
    entries, breaks = (await verify_trails(settings.database_url or "", SCHEMA))[SCHEMA]
    assert breaks == []
    applied = await db.fetchval(
        f"SELECT count(*) FROM {SCHEMA}.audit_log WHERE case_id = ANY($1::text[])", cases
    )
    assert applied == len(cases)  # one audit entry per block, none for a redelivery
    assert entries >= applied


async def _applied_acks(stack: Stack, trust: TrustStore, cases: list[str]) -> list[str]:
    """The case of every applied answer from this department, repeats kept."""
    found = []
    for record in await read_topic(stack.kafka, ACKNOWLEDGEMENTS.name):
        if record.value:
            for answer in answers_in(decode(record.value, trust)[1]) or []:
                if isinstance(answer, MeasureApplied) and answer.department == CODE:
                    found.append(answer.case_id)
    return [case_id for case_id in found if case_id in cases]
