"""Several departments in one host process, each as its own database role: every block once,
one department's unwritable schema stops none of the others and it catches up, and a
batch delivered again (the host killed mid-stream, its groups rewound) doubles nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from events.authorities import NATURAL_RESOURCES
from events.codec import decode
from events.models import MeasureApplied
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.adapters.db_roles import department_role
from services.adapters.department_store import department_schema
from services.adapters.kafka import ensure_topics
from services.config import Settings
from services.entrypoints.department_host import DATABASE_URLS
from services.feedback.handlers import answers_in
from services.runtime.devkeys import ensure_dev_keys, load_dev_signer
from services.runtime.embedded import EmbeddedBroker
from services.runtime.processes import spawn, stop_processes
from tests.conftest import Stack
from tests.integration.test_departments import _filed, _publish
from tests.support import eventually, read_topic

# Longer than the suite's 30 s per test: a host of several departments killed and started again.
pytestmark = pytest.mark.timeout(180)

HOSTED = ("power_supply", "water_supply", "finance", "housing")  # each blocks a filed case
FAULTY = "water_supply"
MEASURES = {  # what case_body()'s facts start in each hosted department
    "power_supply": {"refuse_power_supply"},
    "water_supply": {"refuse_water_supply"},
    "finance": {"refuse_fiscal_funding"},
    "housing": {"halt_works"},
}
WAIT = 120.0


def _start_host(settings: Settings, stack: Stack, logs: Path) -> subprocess.Popen[bytes]:
    """The host as `make run` starts it: each department connecting as its own role."""
    urls = {code: stack.roles[department_role(code)] for code in HOSTED}
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": stack.kafka,
        # As the supervisor does: DATABASE_URL only completes the server pair; with the map
        # given, no department falls back to it (department_urls).
        "DATABASE_URL": next(iter(urls.values())),
        DATABASE_URLS: json.dumps(urls),
        "REDLINE_HOME": str(settings.home),
    }
    return spawn(
        [sys.executable, "-m", "services.entrypoints.department_host", *HOSTED],
        log_path=logs / "department-host.log",
        env=env,
    )


@pytest.fixture(scope="module")
def hosted(stack: Stack, module_broker: EmbeddedBroker) -> Stack:
    """The session's PostgreSQL with a broker of this module's own. The host's members
    (aiokafka's assignor) and the faust workers other tests start in the same
    `redline-department-<code>` groups cannot be in one group at once, and a host this
    module kills stays a member until its session times out."""
    asyncio.run(ensure_topics(module_broker.bootstrap))
    return dataclasses.replace(stack, broker=module_broker)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("host-logs")


@pytest.fixture(scope="module")
def host(settings: Settings, hosted: Stack, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The running host (a list, so a test may replace it by a new one)."""
    ensure_dev_keys(settings.home)
    procs = [_start_host(settings, hosted, logs)]
    yield procs
    stop_processes(procs)


@dataclass
class Run:
    """The running host (`procs[0]`, which a test may replace) and what the tests read."""

    procs: list[subprocess.Popen[bytes]]
    settings: Settings
    stack: Stack  # the session's PostgreSQL, this module's broker
    db: asyncpg.Pool
    trust: TrustStore
    logs: Path

    async def publish_filed(self, cases: list[str]) -> None:
        signer = load_dev_signer(self.settings.home, NATURAL_RESOURCES)
        await _publish(self.stack, [(case_id, _filed(case_id, signer)) for case_id in cases])

    async def all_blocked(self, codes: tuple[str, ...], cases: list[str]) -> bool:
        for code in codes:
            if set(await _blocks(self.db, code, cases)) != set(_expected(code, cases)):
                return False
        return True


@pytest.fixture
def run(
    host: list[subprocess.Popen[bytes]],
    settings: Settings,
    hosted: Stack,
    db: asyncpg.Pool,
    trust: TrustStore,
    logs: Path,
) -> Run:
    return Run(host, settings, hosted, db, trust, logs)


def _cases(tag: str, n: int) -> list[str]:
    return [f"RL-HOST-{tag}-{uuid.uuid4().hex[:6]}-{i:03d}" for i in range(n)]


async def _blocks(db: asyncpg.Pool, code: str, cases: list[str]) -> dict[tuple[str, str], int]:
    """(case, measure) -> how many blocks the department holds for it."""
    try:
        rows = await db.fetch(
            f"SELECT case_id, measure, count(*) AS n FROM {department_schema(code)}.blocks "
            "WHERE case_id = ANY($1::text[]) GROUP BY case_id, measure",
            cases,
        )
    except asyncpg.UndefinedTableError:
        return {}
    return {(row["case_id"], row["measure"]): row["n"] for row in rows}


def _expected(code: str, cases: list[str]) -> dict[tuple[str, str], int]:
    return {(case_id, measure): 1 for case_id in cases for measure in MEASURES[code]}


async def _applied_acks(
    stack: Stack, trust: TrustStore, cases: list[str]
) -> dict[tuple[str, str, str], int]:
    """(department, case, measure) -> how many applied answers were published."""
    found: dict[tuple[str, str, str], int] = {}
    for record in await read_topic(stack.kafka, ACKNOWLEDGEMENTS.name):
        if record.value:
            for answer in answers_in(decode(record.value, trust)[1]) or []:
                if isinstance(answer, MeasureApplied) and answer.case_id in cases:
                    key = (answer.department, answer.case_id, answer.measure)
                    found[key] = found.get(key, 0) + 1
    return found


async def _each_once(db: asyncpg.Pool, stack: Stack, trust: TrustStore, cases: list[str]) -> None:
    """Every hosted department holds each of its blocks once and acknowledged it once."""
    for code in HOSTED:
        assert await _blocks(db, code, cases) == _expected(code, cases), code
    expected = {
        (code, case_id, measure): 1
        for code in HOSTED
        for case_id in cases
        for measure in MEASURES[code]
    }

    async def acknowledged() -> bool:
        return set(await _applied_acks(stack, trust, cases)) >= set(expected)

    await eventually(acknowledged, timeout=WAIT, what="every block acknowledged")
    acks = await _applied_acks(stack, trust, cases)
    assert {k: v for k, v in acks.items() if k[0] in HOSTED} == expected


async def test_a_host_applies_each_departments_blocks_once(run: Run) -> None:
    cases = _cases("A", 10)
    await run.publish_filed(cases)
    await eventually(
        lambda: run.all_blocked(HOSTED, cases), timeout=WAIT, what="every department blocking"
    )
    await _each_once(run.db, run.stack, run.trust, cases)
    assert run.procs[0].poll() is None  # one process did it all


async def test_one_departments_unwritable_schema_stops_none_of_the_others(run: Run) -> None:
    schema, group = department_schema(FAULTY), f"redline_dept_{FAULTY}_access"
    others = tuple(code for code in HOSTED if code != FAULTY)
    first, second = _cases("B1", 5), _cases("B2", 5)
    await run.db.execute(f"REVOKE INSERT ON {schema}.blocks FROM {group}")
    try:
        await run.publish_filed(first)
        await eventually(
            lambda: run.all_blocked(others, first), timeout=WAIT, what="the others blocking"
        )
        await run.publish_filed(second)  # they keep going, case after case
        await eventually(
            lambda: run.all_blocked(others, second), timeout=WAIT, what="the others going on"
        )
        assert await _blocks(run.db, FAULTY, first + second) == {}
        consumed = await run.db.fetchval(f"SELECT count(*) FROM {schema}.consumed_events")
        assert run.procs[0].poll() is None
    finally:
        await run.db.execute(f"GRANT INSERT ON {schema}.blocks TO {group}")
    await eventually(
        lambda: run.all_blocked((FAULTY,), first + second),
        timeout=WAIT,
        what=f"{FAULTY} catching up",
    )
    assert await run.db.fetchval(f"SELECT count(*) FROM {schema}.consumed_events") > consumed
    await _each_once(run.db, run.stack, run.trust, first + second)


async def _ends(stack: Stack) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka)
    await consumer.start()
    try:
        await consumer.topics()  # loads the metadata
        partitions = consumer.partitions_for_topic(VIOLATIONS.name) or set()
        tps = [TopicPartition(VIOLATIONS.name, p) for p in partitions]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _caught_up(stack: Stack) -> bool:
    """Every hosted department's group has committed to the end of the violation stream."""
    ends = await _ends(stack)
    for code in HOSTED:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=stack.kafka, group_id=f"redline-department-{code}"
        )
        await consumer.start()
        try:
            for tp, end in ends.items():
                if (await consumer.committed(tp) or 0) < end:
                    return False
        finally:
            await consumer.stop()
    return True


async def test_a_host_killed_mid_stream_and_given_the_batch_again_doubles_nothing(run: Run) -> None:
    cases = _cases("C", 120)
    signer = load_dev_signer(run.settings.home, NATURAL_RESOURCES)
    records = [(case_id, _filed(case_id, signer)) for case_id in cases]
    await _publish(run.stack, records)

    async def started() -> bool:
        return any([await _blocks(run.db, code, cases) for code in HOSTED])

    await eventually(started, timeout=WAIT, what="the host taking the stream")
    run.procs[0].kill()  # a crash mid-stream: what it had not committed is delivered again
    run.procs[0].wait()
    await _publish(run.stack, records)  # and every event of the stream once more, as sent
    run.procs[0] = _start_host(run.settings, run.stack, run.logs)
    await eventually(
        lambda: run.all_blocked(HOSTED, cases), timeout=WAIT, what="every case blocked"
    )

    async def taken_twice() -> bool:
        """Each department has passed over the second copy of every event (counted)."""
        for code in HOSTED:
            consumed = await run.db.fetchval(
                f"SELECT count(*) FROM {department_schema(code)}.cases "
                "WHERE case_id = ANY($1::text[])",
                cases,
            )
            if consumed != len(cases):
                return False
        return await _caught_up(run.stack)

    await eventually(taken_twice, timeout=WAIT, what="every copy read")
    await _each_once(run.db, run.stack, run.trust, cases)
    for code in HOSTED:  # one audit entry per block, none for a redelivery
        audited = await run.db.fetchval(
            f"SELECT count(*) FROM {department_schema(code)}.audit_log "
            "WHERE case_id = ANY($1::text[])",
            cases,
        )
        assert audited == len(_expected(code, cases)), code
