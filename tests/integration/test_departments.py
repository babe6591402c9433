"""Every department's enforcer on the real broker and Postgres: blocks, lifts, dedup, faults."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from demo import sign_off_jointly
from events.authorities import NATURAL_RESOURCES, department_authority
from events.catalogue import Stage, load_catalogue
from events.codec import decode, decoder, encode_signed
from events.decisions import decide
from events.errors import UnknownDepartment
from events.models import (
    CaseDetails,
    CaseFacts,
    Parcel,
    Payload,
    RestorationDetails,
    RestorationVerified,
)
from events.signing import Signer, TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.access import TokenStore
from services.adapters.department_store import PostgresDepartmentStore
from services.adapters.migrate import migrate
from services.adapters.postgres import create_pool
from services.blocklist.queries import CentralChecks
from services.config import Settings
from services.consuming import RawMessage
from services.departments.handlers import Enforcer
from services.departments.queries import DepartmentQueries
from services.entrypoints.api import create_app
from services.entrypoints.audit_commands import verify_trails
from services.entrypoints.feedback import run_tracker
from services.errors import DatabaseError, InvalidInput
from services.feedback.handlers import answers_in
from services.registry.domain import Step
from services.registry.handlers import STEP_EVENTS, Registry
from services.runtime.devkeys import ensure_dev_keys, load_dev_signer
from services.runtime.processes import spawn, stop_processes
from tests.conftest import Stack
from tests.support import (
    bearer,
    business_premises_facts,
    case_body,
    corrected_event,
    dead_letters,
    eventually,
    filed_event,
    in_process,
    new_unit_code,
    new_uscc,
    producing,
    read_topic,
    service_env,
)

# Longer than the suite's 30 s per test: starts every department's faust worker and waits for each
# block.
pytestmark = pytest.mark.timeout(180)

CATALOGUE = load_catalogue()
WAIT = 180.0  # 21 faust workers share two cores while they start and join their groups


def _start_department(settings: Settings, code: str, logs: Path) -> subprocess.Popen[bytes]:
    return spawn(
        [sys.executable, "-m", "services.entrypoints.department", code],
        log_path=logs / f"department-{code}.log",
        env=service_env(settings),
    )


@pytest.fixture(scope="module")
def system(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The registry's relay and every department, as `make run` starts them."""
    ensure_dev_keys(settings.home)
    logs = tmp_path_factory.mktemp("logs")
    procs: dict[str, subprocess.Popen[bytes]] = {
        "relay": spawn(
            [sys.executable, "-m", "services.entrypoints.relay"],
            log_path=logs / "relay.log",
            env=service_env(settings),
        )
    }
    for code in CATALOGUE.codes:
        procs[code] = _start_department(settings, code, logs)
    yield {"procs": procs, "logs": logs}
    stop_processes(list(procs.values()))


def _required(stage: Stage, body: dict[str, Any]) -> set[tuple[str, str]]:
    """(department, measure) of every measure the registry starts at `stage` for `body`."""
    details = CaseDetails.model_validate(body)
    codes = {d.measure for d in decide(CATALOGUE, [stage], details.parcels, details.facts)}
    return {(d.code, m.code) for d in CATALOGUE.departments for m in d.measures if m.code in codes}


async def _blocks(
    queries: DepartmentQueries, case_id: str, *, active: bool
) -> set[tuple[str, str]]:
    found = set()
    for code in CATALOGUE.codes:
        try:
            rows = await queries.blocks(code, subject_id=None, active_only=active)
        except DatabaseError:  # the department has not created its schema yet
            continue
        found |= {(code, row.measure) for row in rows if row.case_id == case_id}
    return found


async def _acks(stack: Stack, trust: TrustStore, case_id: str) -> list[tuple[str, str, str]]:
    """(applied/lifted/failed, department, measure) of each answer about the case, in the
    order sent: the departments' answers come a batch an event, a subscriber's one each."""
    acks = []
    for record in await read_topic(stack.kafka, ACKNOWLEDGEMENTS.name):
        if record.value:
            for answer in answers_in(decode(record.value, trust)[1]) or []:
                if answer.case_id == case_id:
                    kind = answer.event_type.split(".")[2]
                    acks.append((kind, answer.department, answer.measure))
    return acks


REVOCATION = {
    "court": "孝义市人民法院",
    "decision_no": "(2026)晋1181行初1号",
    "revoked_on": "2026-11-20",
}
LAND_PROCEDURES = {
    "approval_no": "晋政地〔2026〕88号",
    "approved_on": "2026-11-02",
    "approved_by": "山西省人民政府",
}


async def _step(registry: Registry, case_id: str, step: Step, body: dict[str, Any]) -> None:
    await registry.record_step(case_id, step, STEP_EVENTS[step][0].model_validate(body))


async def test_filing_blocks_in_every_department_and_restoration_lifts(
    system: dict[str, Any],
    registry: Registry,
    queries: DepartmentQueries,
    stack: Stack,
    trust: TrustStore,
) -> None:
    facts = business_premises_facts()
    facts["project"]["sector"] = "transport"
    body = case_body(("permanent_basic_farmland", "5.5"), facts=facts)
    case_id = (await registry.file_case(CaseDetails.model_validate(body))).case_id
    expected = _required(Stage.filing, body) | _required(Stage.accountability, body)
    # The business premises of an unpermitted transport project: everything but the
    # subsidies for trees and farming and water's projects, which its facts do not call
    # for. Accountability (5.5 mu) starts no measure: its referrals are workflows.
    assert ("forestry", "refuse_afforestation_subsidy") not in expected
    assert ("water_resources", "supervise_water_project_land_procedures") not in expected
    assert ("power_supply", "refuse_power_supply") in expected
    assert ("transport", "halt_transport_works") in expected
    assert _required(Stage.accountability, body) == set()

    async def all_blocked() -> bool:
        return await _blocks(queries, case_id, active=True) == expected

    await eventually(all_blocked, timeout=WAIT, what="every required block applied")

    async def all_acknowledged() -> bool:
        applied = {(d, m) for kind, d, m in await _acks(stack, trust, case_id) if kind == "applied"}
        return applied == expected

    await eventually(all_acknowledged, timeout=60, what="every block acknowledged")

    await _step(
        registry,
        case_id,
        Step.penalty,
        {"decision_no": "罚1", "decided_on": "2026-11-01", "fine_yuan": "5000", "summary": "罚款"},
    )
    expected |= _required(Stage.penalty, body)
    await eventually(all_blocked, timeout=60, what="credit record published after the penalty")

    await _step(
        registry,
        case_id,
        Step.rectification,
        {"action": "demolition", "completed_on": "2026-11-05"},
    )
    await sign_off_jointly(
        registry,
        case_id,
        RestorationDetails(
            verified_on=date(2026, 11, 10),
            natural_resources_officer="李明",
            agriculture_officer="王芳",
        ),
    )
    survivors = {
        (d.code, m.code)
        for d in CATALOGUE.departments
        for m in d.measures
        if (d.code, m.code) in expected and "restoration_verified" not in m.lifted_by
    }

    async def lifted() -> bool:
        return await _blocks(queries, case_id, active=True) == survivors

    await eventually(lifted, timeout=60, what="restoration lifted the blocks")
    assert survivors == {("development_reform", "publish_credit_record")}

    async def lifts_acknowledged() -> bool:
        acks = await _acks(stack, trust, case_id)
        return {(d, m) for kind, d, m in acks if kind == "lifted"} == expected - survivors

    await eventually(lifts_acknowledged, timeout=60, what="every lift acknowledged")
    acks = await _acks(stack, trust, case_id)
    assert len(acks) == len(set(acks)), "an acknowledgement was sent twice"

    # Every decision is in the department's audit trail, with its legal basis, unbroken.
    trail = await verify_trails(stack.database_url, "dept_power_supply")
    assert trail["dept_power_supply"][1] == []
    conn = await asyncpg.connect(stack.database_url)
    try:
        decisions = await conn.fetch(
            "SELECT action, legal_basis FROM dept_power_supply.audit_log WHERE case_id = $1 "
            "ORDER BY seq",
            case_id,
        )
    finally:
        await conn.close()
    assert [d["action"] for d in decisions] == [
        "apply refuse_power_supply",
        "lift refuse_power_supply",
    ]
    power = CATALOGUE.department("power_supply").measure("refuse_power_supply")
    assert decisions[0]["legal_basis"] == power.legal_basis


async def test_a_subject_stays_blocked_until_its_last_case_is_lifted(
    system: dict[str, Any], registry: Registry, queries: DepartmentQueries
) -> None:
    subject_id = new_uscc()
    bodies = [case_body(), case_body()]
    for body in bodies:
        body["subject"]["id"] = subject_id
    first = (await registry.file_case(CaseDetails.model_validate(bodies[0]))).case_id
    second = (await registry.file_case(CaseDetails.model_validate(bodies[1]))).case_id

    async def power_cases() -> set[str]:
        rows = await queries.blocks("power_supply", subject_id=subject_id, active_only=True)
        return {row.case_id for row in rows}

    async def both() -> bool:
        return await power_cases() == {first, second}

    await eventually(both, timeout=WAIT, what="both cases block the subject")
    await _step(registry, first, Step.revocation, REVOCATION)

    async def only_second() -> bool:
        return await power_cases() == {second}

    await eventually(only_second, timeout=60, what="the first case lifted")


async def _publish(stack: Stack, records: list[tuple[str, bytes]]) -> None:
    async with producing(stack.kafka) as producer:
        for key, value in records:
            await producer.send_and_wait(VIOLATIONS.name, value, key=key.encode())


def _filed(case_id: str, signer: Signer) -> bytes:
    """A signed case.filed as the registry sends it, with the measures its facts start."""
    return _signed(filed_event(case_body(), case_id), signer)


def _signed(payload: Payload, signer: Signer) -> bytes:
    return encode_signed(payload, signer, source=NATURAL_RESOURCES.source)[1]


async def test_the_same_event_twice_makes_one_block_and_one_acknowledgement(
    system: dict[str, Any], settings: Settings, stack: Stack, db: asyncpg.Pool, trust: TrustStore
) -> None:
    case_id = f"RL-DUP-{uuid.uuid4().hex[:8]}"
    raw = _filed(case_id, load_dev_signer(settings.home, NATURAL_RESOURCES))
    await _publish(stack, [(case_id, raw), (case_id, raw)])

    async def blocked_and_acknowledged() -> bool:
        try:
            rows = await db.fetchval(
                "SELECT count(*) FROM dept_power_supply.blocks WHERE case_id = $1", case_id
            )
        except asyncpg.UndefinedTableError:
            return False
        acks = await _acks(stack, trust, case_id)
        return rows == 1 and ("applied", "power_supply", "refuse_power_supply") in acks

    await eventually(blocked_and_acknowledged, timeout=WAIT, what="power supply blocked once")
    assert (
        await db.fetchval(
            "SELECT count(*) FROM dept_power_supply.blocks WHERE case_id = $1", case_id
        )
        == 1
    )
    power = [a for a in await _acks(stack, trust, case_id) if a[1] == "power_supply"]
    assert power == [("applied", "power_supply", "refuse_power_supply")]


async def test_forged_and_malformed_messages_are_dead_lettered_and_block_nobody(
    system: dict[str, Any], stack: Stack, db: asyncpg.Pool, trust: TrustStore
) -> None:
    forged_case = f"RL-FORGED-{uuid.uuid4().hex[:8]}"
    impostor = Signer.generate("natural_resources-dev")  # the real key id, another key
    forged = _filed(forged_case, impostor)
    garbage = b"\xff\xfe not json " + uuid.uuid4().hex.encode()
    await _publish(stack, [(forged_case, forged), ("garbage", garbage)])

    async def dead_lettered() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for letter in await dead_letters(stack.kafka, trust):
            original = base64.b64decode(letter.original_b64)
            if original in (forged, garbage):
                found.setdefault(letter.reason, set()).add(letter.consumer)
        return found

    every = {f"department.{code}" for code in CATALOGUE.codes}

    async def both_everywhere() -> bool:
        found = await dead_lettered()
        return found.get("signature_bad_signature") == every and found.get("invalid_event") == every

    await eventually(both_everywhere, timeout=WAIT, what="every department dead-lettered both")
    for code in CATALOGUE.codes:
        blocked = await db.fetchval(
            f"SELECT count(*) FROM dept_{code}.blocks WHERE case_id = $1", forged_case
        )
        assert blocked == 0


async def test_postgres_stopped_mid_stream_loses_and_doubles_nothing(
    system: dict[str, Any], settings: Settings, stack: Stack, db: asyncpg.Pool, trust: TrustStore
) -> None:
    signer = load_dev_signer(settings.home, NATURAL_RESOURCES)
    cases = [f"RL-PGDOWN-{uuid.uuid4().hex[:8]}" for _ in range(40)]

    warm_up = f"RL-PGWARM-{uuid.uuid4().hex[:8]}"
    await _publish(stack, [(warm_up, _filed(warm_up, signer))])

    async def warmed_up() -> bool:  # the department is consuming before the fault
        try:
            query = "SELECT count(*) FROM dept_banks.blocks WHERE case_id = $1"
            return bool(await db.fetchval(query, warm_up))
        except asyncpg.UndefinedTableError:
            return False

    await eventually(warmed_up, timeout=WAIT, what="banks consuming")
    stack.postgres.stop()
    try:
        await _publish(stack, [(case_id, _filed(case_id, signer)) for case_id in cases])
    finally:
        stack.postgres.start()

    async def caught_up() -> bool:
        try:
            rows = await db.fetch(
                "SELECT case_id, count(*) AS n FROM dept_banks.blocks "
                "WHERE case_id = ANY($1::text[]) GROUP BY case_id",
                cases,
            )
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
            return False
        return len(rows) == len(cases)

    await eventually(caught_up, timeout=WAIT, what="banks caught up after Postgres returned")
    counts = await db.fetch(
        "SELECT count(*) AS n FROM dept_banks.blocks WHERE case_id = ANY($1::text[]) "
        "GROUP BY case_id",
        cases,
    )
    assert [row["n"] for row in counts] == [1] * len(cases)

    async def acknowledged() -> bool:
        applied = [a for c in cases[:5] for a in await _acks(stack, trust, c) if a[1] == "banks"]
        return len(applied) == 5

    await eventually(acknowledged, timeout=60, what="banks acknowledged each block once")


async def test_blocks_query_shows_what_each_block_is_held_against_and_why(
    system: dict[str, Any],
    settings: Settings,
    registry: Registry,
    queries: DepartmentQueries,
    checks: CentralChecks,
) -> None:
    body = case_body()
    facts = CaseFacts.model_validate(body["facts"])
    assert facts.project is not None and facts.site.real_estate_unit is not None
    case_id = (await registry.file_case(CaseDetails.model_validate(body))).case_id
    subject_id = body["subject"]["id"]

    async def shown() -> bool:
        approvals = await queries.blocks("approvals", subject_id=subject_id, active_only=True)
        power = await queries.blocks("power_supply", subject_id=subject_id, active_only=True)
        return bool(approvals and power)

    await eventually(shown, timeout=WAIT, what="approvals and power supply blocks")
    [block] = await queries.blocks("approvals", subject_id=subject_id, active_only=True)
    assert block.case_id == case_id
    assert block.measure == "refuse_construction_permit"
    assert block.legal_basis == "行政审批局：对于未取得用地手续的各类项目，不予核发施工许可证。"
    assert block.since.tzinfo is not None
    assert (block.target, block.project, block.site) == ("project", facts.project, None)
    assert block.target_ref == f"{facts.project.code} {facts.project.name}"
    assert block.rule == "land in cultivated or permanent_basic_farmland and construction_project"
    assert (block.facts, block.land) == (["construction_project"], ["cultivated"])
    by_project = await queries.blocks(
        "approvals", subject_id=None, active_only=True, project=facts.project.code
    )
    assert [b.case_id for b in by_project] == [case_id]

    [power] = await queries.blocks("power_supply", subject_id=subject_id, active_only=True)
    assert (power.target, power.site) == ("site", facts.site)
    assert power.target_ref == f"{facts.site.location} ({facts.site.real_estate_unit})"
    for site in (facts.site.real_estate_unit, facts.site.location):
        found = await queries.blocks("power_supply", subject_id=None, active_only=True, site=site)
        assert case_id in {b.case_id for b in found}, site
    elsewhere = await queries.blocks(
        "power_supply", subject_id=subject_id, active_only=True, site=new_unit_code()
    )
    assert elsewhere == []

    with pytest.raises(UnknownDepartment, match="unknown department 'aliens'"):
        await queries.blocks("aliens", subject_id=None, active_only=True)
    with pytest.raises(InvalidInput, match="site: must not be empty"):
        await queries.blocks("power_supply", subject_id=None, active_only=True, site=" ")
    shown_json = json.loads(block.model_dump_json())
    assert (shown_json["department"], shown_json["target"]) == ("approvals", "project")

    # The same filters over HTTP, as an operator reads them.
    app = create_app(settings, registry, queries, checks, TokenStore.load(settings.api_tokens))
    operator = bearer(settings.home, "operator")
    url = "/v1/departments/power_supply/blocks"
    async with in_process(app) as api:
        at_site = await api.get(url, params={"site": facts.site.location}, headers=operator)
        blank = await api.get(url, params={"site": " "}, headers=operator)
    assert at_site.status_code == 200
    [listed] = [b for b in at_site.json()["blocks"] if b["case_id"] == case_id]
    assert (listed["target"], listed["site"]["location"]) == ("site", facts.site.location)
    assert listed["rule"] and listed["facts"] and listed["land"] == ["cultivated"]
    assert blank.status_code == 422
    assert blank.json()["errors"] == [
        {"field": "site", "reason": "must not be empty; leave it out to see every block"}
    ]


PARCELS = [Parcel(land_class="cultivated", area_mu="1.5")]  # case_body's default


async def test_the_store_moves_reapplies_and_lifts_blocks_whatever_the_batching(
    own_database: Settings, trust: TrustStore
) -> None:
    """The department's own SQL (no broker): a block lifted and applied again in one
    batch or across batches ends as one row, held where the case's facts now say."""
    database = own_database.database_url or ""
    code = "power_supply"
    await migrate(database, package="services.departments.migrations", schema=f"dept_{code}")
    pool = await create_pool(database, max_size=2)
    store = PostgresDepartmentStore(pool, code)
    ensure_dev_keys(own_database.home)
    signer = load_dev_signer(own_database.home, NATURAL_RESOURCES)
    enforcer = Enforcer(
        CATALOGUE.department(code),
        store,
        decoder(trust),
        load_dev_signer(own_database.home, department_authority(code)),
        lambda: datetime.now(UTC),
    )
    reads = DepartmentQueries(lambda _: store)
    offsets = iter(range(1_000_000))

    def batch(*payloads: Payload) -> list[RawMessage]:
        return [
            RawMessage(VIOLATIONS.name, 0, next(offsets), b"k", _signed(p, signer))
            for p in payloads
        ]

    def facts(location: str, **changes: Any) -> CaseFacts:
        site = {"location": location, "real_estate_unit": new_unit_code()}
        return CaseFacts.model_validate(business_premises_facts(site=site, **changes))

    first, second, third = facts("东村厂房"), facts("西村厂房"), facts("南村厂房")
    home = facts("东村住宅", project=None, building_use="residence")
    moving = filed_event({**case_body(), "facts": first.model_dump(mode="json")}, "RL-MOVE")
    restored = filed_event(case_body(), "RL-RESTORED")
    try:
        # One batch: filed, moved (lift + apply) / filed and restored (apply + lift).
        one = batch(
            moving,
            corrected_event("RL-MOVE", PARCELS, first, second),
            restored,
            RestorationVerified(
                case_id="RL-RESTORED",
                verified_on=date(2027, 3, 1),
                natural_resources_officer="王某",
                agriculture_officer="李某",
            ),
        )
        outcome = await enforcer.handle(one)
        assert (outcome.applied, outcome.lifted) == (3, 2)
        [moved] = await reads.blocks(code, subject_id=None, active_only=True, site="西村厂房")
        assert (moved.case_id, moved.site, moved.lifted_at) == ("RL-MOVE", second.site, None)
        assert moved.facts == ["construction_project", "business_premises"]
        assert await reads.blocks(code, subject_id=None, active_only=False, site="东村厂房") == []
        [done] = [
            b
            for b in await reads.blocks(code, subject_id=None, active_only=False)
            if b.case_id == "RL-RESTORED"
        ]
        assert done.lift_reason == "restoration_verified"

        # Across batches: lifted by a correction, applied again by the next one.
        await enforcer.handle(batch(corrected_event("RL-MOVE", PARCELS, second, home)))
        [ended] = await reads.blocks(code, subject_id=None, active_only=False, site="西村厂房")
        assert ended.lift_reason == "corrected"
        again = batch(corrected_event("RL-MOVE", PARCELS, home, third))
        outcome = await enforcer.handle(again)
        assert (outcome.applied, outcome.lifted) == (1, 0)
        rows = await pool.fetch(
            f"SELECT lifted_at, lift_reason, lifted_by, target, target_ref->>'location' AS at "
            f"FROM dept_{code}.blocks WHERE case_id = 'RL-MOVE'"
        )
        assert [dict(r) for r in rows] == [
            {
                "lifted_at": None,
                "lift_reason": None,
                "lifted_by": None,
                "target": "site",
                "at": "南村厂房",
            }
        ]
        stored = await pool.fetchval(
            f"SELECT facts->'site'->>'location' FROM dept_{code}.cases WHERE case_id = 'RL-MOVE'"
        )
        assert stored == "南村厂房"

        # Redelivered: nothing changes, nothing is acknowledged twice.
        outbox = await pool.fetchval(f"SELECT count(*) FROM dept_{code}.outbox")
        assert outbox == 3  # one signed event a batch: of 5 answers, then 1, then 1
        outcome = await enforcer.handle([*one, *again])
        assert (outcome.applied, outcome.lifted, outcome.duplicates) == (0, 0, 5)
        assert await pool.fetchval(f"SELECT count(*) FROM dept_{code}.outbox") == outbox

        # A block written before targets reads as held against its subject.
        await pool.execute(
            f"INSERT INTO dept_{code}.blocks (measure, case_id, subject_kind, subject_id, "
            "subject_name, legal_basis, applied_at, applied_by) SELECT 'refuse_power_supply', "
            f"case_id, subject_kind, subject_id, subject_name, 'basis', now(), 'e' "
            f"FROM dept_{code}.cases WHERE case_id = 'RL-RESTORED' "
            "ON CONFLICT (measure, case_id) DO UPDATE SET target = DEFAULT, target_ref = NULL, "
            "lifted_at = NULL"
        )
        [old] = [
            b
            for b in await reads.blocks(code, subject_id=None, active_only=True)
            if b.case_id == "RL-RESTORED"
        ]
        assert (old.target, old.target_ref) == ("subject", restored.subject.id)

        trail = await verify_trails(database, f"dept_{code}")
        assert trail[f"dept_{code}"][1] == []
    finally:
        await pool.close()


async def _overdue_notices(db: asyncpg.Pool, case_id: str) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM feedback.outbox "
        "WHERE event_type = 'redline.response.overdue.v1' AND key = $1",
        case_id,
    )
    return count


async def _statuses(registry: Registry, case_id: str) -> dict[tuple[str, str], str]:
    return {
        (r.department, r.measure): r.status for r in (await registry.get_case(case_id)).responses
    }


class MovableClock:
    """The tracker's clock, moved forward by the test instead of waiting a day."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def test_a_stopped_department_is_shown_overdue_once_and_catches_up(
    system: dict[str, Any], settings: Settings, registry: Registry, db: asyncpg.Pool
) -> None:
    clock = MovableClock()
    stop = asyncio.Event()
    tracker = asyncio.create_task(run_tracker(settings, stop, clock=clock, scan_every=0.1))
    procs: dict[str, subprocess.Popen[bytes]] = system["procs"]
    stop_processes([procs["banks"]])
    try:
        case_id = (await registry.file_case(CaseDetails.model_validate(case_body()))).case_id

        async def answers() -> dict[str, Any]:
            rows = await db.fetch(
                "SELECT department, done_at, overdue_at FROM responses "
                "WHERE case_id = $1 AND measure IN ('refuse_power_supply', 'refuse_loans')",
                case_id,
            )
            return {row["department"]: row for row in rows}

        async def power_done_banks_waiting() -> bool:
            if tracker.done():
                tracker.result()  # the tracker died: raise its error here
            found = await answers()
            return (
                "power_supply" in found
                and found["power_supply"]["done_at"] is not None
                and "banks" in found
                and found["banks"]["done_at"] is None
            )

        await eventually(power_done_banks_waiting, timeout=WAIT, what="tracker saw the answers")
        assert (await registry.get_case(case_id)).responses  # the case shows who answered

        clock.ahead = timedelta(hours=25)  # past the 24 h deadline of banks and utilities

        async def banks_overdue() -> bool:
            return (await answers())["banks"]["overdue_at"] is not None

        await eventually(banks_overdue, timeout=60, what="banks marked overdue")
        shown = {
            (r.department, r.measure): r.status
            for r in (await registry.get_case(case_id)).responses
        }
        assert shown[("banks", "refuse_loans")] == "overdue"
        assert shown[("power_supply", "refuse_power_supply")] == "done"
        assert await _overdue_notices(db, case_id) == 1
        assert (await answers())["power_supply"]["overdue_at"] is None
    finally:
        procs["banks"] = _start_department(settings, "banks", system["logs"])

    async def banks_caught_up() -> bool:
        return (await answers())["banks"]["done_at"] is not None

    try:
        await eventually(banks_caught_up, timeout=WAIT, what="banks answered after restart")
        assert (await _statuses(registry, case_id))[("banks", "refuse_loans")] == "done"
        assert await _overdue_notices(db, case_id) == 1
    finally:
        stop.set()
        await tracker


async def _lift_reasons(
    queries: DepartmentQueries, code: str, case_id: str
) -> dict[str, str | None]:
    """measure -> lift reason (None while active) of `code`'s blocks on the case."""
    rows = await queries.blocks(code, subject_id=None, active_only=False)
    return {row.measure: row.lift_reason for row in rows if row.case_id == case_id}


async def _consumed_everywhere(stack: Stack, event_id: str) -> bool:
    """Whether every department has taken the event (done with it, whatever it did)."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        for code in CATALOGUE.codes:
            try:
                taken = await conn.fetchval(
                    f"SELECT count(*) FROM dept_{code}.consumed_events WHERE event_id = $1",
                    event_id,
                )
            except asyncpg.UndefinedTableError:
                return False
            if not taken:
                return False
        return True
    finally:
        await conn.close()


async def test_measures_follow_the_facts_and_end_with_their_own_end_conditions(
    system: dict[str, Any], registry: Registry, queries: DepartmentQueries, stack: Stack
) -> None:
    """Issue #16 end to end: an unused-land case blocks nobody; land procedures lift
    housing's halt but not the credit record; confiscation ends the blocks and reaches
    finance, which supervises the confiscated property."""
    unused = case_body(("unused", "0.5"))  # business premises and all: not farmland
    filed = await registry.file_case(CaseDetails.model_validate(unused))
    assert filed.starts == []

    async def taken() -> bool:
        return await _consumed_everywhere(stack, filed.event_ids[0])

    await eventually(taken, timeout=WAIT, what="every department took the unused-land case")
    assert await _blocks(queries, filed.case_id, active=False) == set()

    penalty = {
        "decision_no": "罚2",
        "decided_on": "2026-11-01",
        "fine_yuan": "800",
        "summary": "罚款",
    }
    legalised = (await registry.file_case(CaseDetails.model_validate(case_body()))).case_id
    await _step(registry, legalised, Step.penalty, penalty)

    async def halted() -> bool:
        found = await _lift_reasons(queries, "housing", legalised)
        credit = await _lift_reasons(queries, "development_reform", legalised)
        return found.get("halt_works", "") is None and "publish_credit_record" in credit

    await eventually(halted, timeout=WAIT, what="housing halted the works")
    await _step(registry, legalised, Step.land_procedures, LAND_PROCEDURES)

    async def procedures_lift_the_halt() -> bool:
        found = await _lift_reasons(queries, "housing", legalised)
        return found.get("halt_works") == "land_procedures_obtained"

    await eventually(procedures_lift_the_halt, timeout=60, what="land procedures lift the halt")
    assert (await _lift_reasons(queries, "development_reform", legalised)) == {
        "refuse_feasibility_approval": "land_procedures_obtained",
        "publish_credit_record": None,  # the penalty's record stands
    }

    confiscated = (await registry.file_case(CaseDetails.model_validate(case_body()))).case_id
    await _step(registry, confiscated, Step.penalty, penalty)
    await _step(
        registry,
        confiscated,
        Step.confiscation,
        {"decision_no": "孝自然资罚〔2026〕9号", "completed_on": "2026-11-03", "property": "厂房"},
    )

    async def finance_told() -> bool:
        found = await _lift_reasons(queries, "finance", confiscated)
        return found == {
            "refuse_fiscal_funding": "confiscation_completed",
            "supervise_confiscated_property": None,
        }

    await eventually(finance_told, timeout=60, what="confiscation reaches finance")
    [supervision] = [
        row
        for row in await queries.blocks("finance", subject_id=None, active_only=True)
        if row.case_id == confiscated
    ]
    assert supervision.target == "site" and supervision.site is not None

    async def supply_restored() -> bool:
        power = await _lift_reasons(queries, "power_supply", confiscated)
        return power == {"refuse_power_supply": "confiscation_completed"}

    await eventually(supply_restored, timeout=60, what="confiscation lifts the supply block")
