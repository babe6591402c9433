"""Fan-out latency: cases filed over HTTP at a steady rate with the whole system running;
the time from each 201 to each department's block and to a subscriber's replica.

It runs its own system (`make run`'s supervisor, demo feed off) on a fresh embedded broker
and Postgres, so the other workloads' backlogs do not count against it.

It also reads every process's CPU time from /proc (Linux), idle for a few seconds and
then over the filings, which says how many cases per second the machine can take.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from events.authorities import demo_subscriber
from events.catalogue import load_catalogue
from events.codec import decode
from events.models import MeasureApplied
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS, HEARTBEAT_KEY, blocklist_topic
from services.access import dev_token
from services.adapters.db_roles import department_role
from services.config import load_settings
from services.entrypoints.children import ChildService
from services.entrypoints.run import Supervisor
from services.runtime.processes import free_port
from tests.support import case_body, filing_measures, read_topic

ISSUE_RATE = 50.0  # cases/s: the rate the fan-out targets of #7 and #19 are set at
FAN_OUT_CPU = (
    "CPU per case, fan-out (all the rest: departments, tracker, builder, subscribers, "
    "broker, Postgres)"
)
# The issues' targets, shown at ISSUE_RATE only: #19's for the rate answered, every
# department's block and the fan-out's CPU, #7's (ended blocked here) for the replica.
ISSUE_TARGETS = {
    "rate answered (all 201s in)": 50,
    "201 to department block p99": 250,
    "201 to subscriber replica p99": 100,
    FAN_OUT_CPU: 30,
}
RATE_PER_SECOND = float(os.environ.get("FANOUT_RATE", ISSUE_RATE))
SUBSCRIBED = "refuse_power_supply"
SUBSCRIBER_SOURCE = demo_subscriber("power_supply").source
WARM_UP_SECONDS = 240.0
CONNECTIONS = 50
IDLE_SECONDS = 5.0
QUIET_WINDOW_SECONDS = 1.0
QUIET_FACTOR, QUIET_MARGIN_CORES = 2.0, 0.05  # "at rest": near the idle CPU measured first
QUIET_DEADLINE_SECONDS = 120.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> tuple[int, float]:
    """(parent pid, user + system CPU seconds) of a live process and of the children it has
    reaped (an autovacuum worker born and gone within the run counts in its postmaster);
    (0, 0) once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0.0
    return int(fields[1]), sum(int(ticks) for ticks in fields[11:15]) / CLOCK_TICKS


def _kind(service: ChildService) -> str:
    return service.name.split("-")[0]  # department-finance -> department


def _role_kinds(supervisor: Supervisor) -> dict[str, str]:
    """Each database role the supervisor's children log in as -> the kind of that child."""
    roles: dict[str, str] = {}
    for service, _ in supervisor.children:
        kind = _kind(service)
        named = [service.db_role, *(role for _, role in service.hosted)]
        named += [department_role(code) for code in service.departments]
        roles |= {role: kind for role in named if role}
    return roles


def _backend_role(pid: int) -> str | None:
    """The role a Postgres backend serves, from its title (`postgres: <role> <db> ...`)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            title = cmdline.read().decode(errors="replace").split()
    except OSError:
        return None
    return title[1] if len(title) > 1 and title[0] == "postgres:" else None


def cpu_by_kind(supervisor: Supervisor) -> dict[str, float]:
    """CPU seconds so far of each kind of process the supervisor runs. Postgres counts its
    backends too (the children of its postmaster): a backend under the role of one kind of
    service as `postgres for <kind>`, the rest (its own workers, backends gone since) as
    `postgres`."""
    kinds: dict[str, float] = {}
    for service, proc in supervisor.children:
        kind = _kind(service)
        kinds[kind] = kinds.get(kind, 0.0) + process_cpu(proc.pid)[1]
    if supervisor.broker is not None and supervisor.broker.pid is not None:
        kinds["broker"] = process_cpu(supervisor.broker.pid)[1]
    postmaster = supervisor.postgres.pid if supervisor.postgres is not None else None
    if postmaster is not None:
        roles = _role_kinds(supervisor)
        kinds["postgres"] = 0.0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                parent, seconds = process_cpu(int(entry))
                if int(entry) == postmaster or parent == postmaster:
                    served = roles.get(_backend_role(int(entry)) or "")
                    kind = f"postgres for {served}" if served else "postgres"
                    kinds[kind] = kinds.get(kind, 0.0) + seconds
    return kinds


FILING = ("registry", "relay")  # the filing of a case: its API and the registry's relay


def _is_filing(kind: str) -> bool:
    return kind.removeprefix("postgres for ") in FILING


def _cpu_figures(
    idle: dict[str, float], busy: dict[str, float], idle_s: float, cases: int
) -> list[dict[str, Any]]:
    figures: list[dict[str, Any]] = [
        {"figure": "CPU idle, all processes", "value": sum(idle.values()) / idle_s, "unit": "cores"}
    ]
    for kind, seconds in sorted(busy.items(), key=lambda item: -item[1]):
        figures.append(
            {"figure": f"CPU per case: {kind}", "value": seconds * 1000 / cases, "unit": "ms"}
        )
    filing = sum(seconds for kind, seconds in busy.items() if _is_filing(kind))
    return [
        *figures,
        {
            "figure": "CPU per case, filing (registry API, relay, their Postgres backends)",
            "value": filing * 1000 / cases,
            "unit": "ms",
        },
        {
            "figure": FAN_OUT_CPU,
            "value": (sum(busy.values()) - filing) * 1000 / cases,
            "unit": "ms",
        },
        {"figure": "CPU per case, all", "value": sum(busy.values()) * 1000 / cases, "unit": "ms"},
    ]


async def _once_quiet(supervisor: Supervisor, idle_cores: float) -> dict[str, float]:
    """CPU so far by kind, read once the system is back at rest: the builder, tracker and
    subscribers may still be working off the run after the last department block, and
    what they spend on it is part of what a case costs."""
    deadline = time.monotonic() + QUIET_DEADLINE_SECONDS
    last = cpu_by_kind(supervisor)
    while True:
        await asyncio.sleep(QUIET_WINDOW_SECONDS)  # measuring a window, not waiting for it
        now = cpu_by_kind(supervisor)
        cores = sum(_spent(last, now).values()) / QUIET_WINDOW_SECONDS
        if cores <= QUIET_FACTOR * idle_cores + QUIET_MARGIN_CORES:
            return now
        if time.monotonic() > deadline:
            raise RuntimeError(f"still busy ({cores:.2f} cores) {QUIET_DEADLINE_SECONDS} s on")
        last = now


def _spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {kind: after[kind] - before.get(kind, 0.0) for kind in after}


def _filing_departments() -> list[str]:
    """The departments a filing of the bench's cases starts a measure in."""
    started = filing_measures(case_body(("cultivated", "2")))
    return [
        d.code for d in load_catalogue().departments if any(m.code in started for m in d.measures)
    ]


async def _applied(conn: asyncpg.Connection, code: str, cases: list[str]) -> dict[str, datetime]:
    try:
        rows = await conn.fetch(
            f"SELECT case_id, min(applied_at) AS at FROM dept_{code}.blocks "
            "WHERE case_id = ANY($1::text[]) GROUP BY case_id",
            cases,
        )
    except asyncpg.UndefinedTableError:
        return {}
    return {row["case_id"]: row["at"] for row in rows}


async def _all_applied(
    conn: asyncpg.Connection, cases: list[str], deadline: float
) -> dict[str, dict[str, datetime]]:
    departments = _filing_departments()
    while True:
        found = {code: await _applied(conn, code, cases) for code in departments}
        if all(len(found[code]) == len(cases) for code in departments):
            return found
        if time.monotonic() > deadline:
            missing = {code: len(cases) - len(found[code]) for code in departments}
            raise RuntimeError(f"blocks still missing at the deadline: {missing}")
        await asyncio.sleep(0.2)


def trust_of(home: Path) -> TrustStore:
    return TrustStore.load(home / "truststore.yaml")


async def _replica_times(
    kafka: str, cases: set[str], trust: TrustStore
) -> dict[str, tuple[float, float]]:
    """Per case: when the power subscriber applied its entry (its acknowledgement's
    applied_at) and when the builder signed that entry."""
    signed: dict[str, float] = {}
    for record in await read_topic(kafka, blocklist_topic(SUBSCRIBED).name):
        if record.value is not None and record.key != HEARTBEAT_KEY.encode():
            envelope, _ = decode(record.value, trust)
            signed[envelope.id] = envelope.time.timestamp()
    found: dict[str, tuple[float, float]] = {}
    deadline = time.monotonic() + 120
    while len(found) < len(cases) and time.monotonic() < deadline:
        for record in await read_topic(kafka, ACKNOWLEDGEMENTS.name):
            if record.key is None or record.key.decode() not in cases or record.value is None:
                continue
            envelope, ack = decode(record.value, trust)
            if isinstance(ack, MeasureApplied) and envelope.source == SUBSCRIBER_SOURCE:
                found[ack.case_id] = (ack.applied_at.timestamp(), signed.get(ack.caused_by, 0.0))
    return found


async def _file(
    client: httpx.AsyncClient,
    filed: dict[str, float],
    sent: dict[str, float] | None = None,
    due: float | None = None,
) -> None:
    """File one case, timed from `due` (else now); a connection the server closed under it
    is retried with the same Idempotency-Key, so a retry can never file the case twice."""
    body, key = case_body(("cultivated", "2")), str(uuid.uuid4())
    began = time.time() if due is None else due
    for attempt in range(3):
        try:
            response = await client.post("/v1/cases", json=body, headers={"Idempotency-Key": key})
            break
        except httpx.TransportError:
            if attempt == 2:
                raise
    at = time.time()
    response.raise_for_status()
    filed[response.json()["case_id"]] = at
    if sent is not None:
        sent[response.json()["case_id"]] = began


async def _file_in_turn(
    client: httpx.AsyncClient,
    filed: dict[str, float],
    sent: dict[str, float],
    turns: asyncio.Semaphore,
) -> None:
    """Filings beyond the open connections wait here, not in httpx's pool: its pool scans
    every waiting request on each change, and with thousands waiting the client alone
    took a third of a core and set the pace. Each is still timed from when it was due."""
    due = time.time()
    async with turns:
        await _file(client, filed, sent, due)


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, ordered[-1]


async def run(
    kafka: str, database: str, count: int, *, rate: float = RATE_PER_SECOND
) -> list[dict[str, Any]]:
    del kafka, database  # its own system, see the module docstring
    home = Path(tempfile.mkdtemp(prefix="redline-bench-fanout-"))
    port = free_port()
    settings = load_settings(
        {"REDLINE_HOME": str(home), "REDLINE_DEMO": "0", "REDLINE_API_PORT": str(port)}
    )
    supervisor = Supervisor(settings)
    running = await asyncio.to_thread(supervisor.start)
    try:
        conn = await asyncpg.connect(running.database_url)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            # Filings the API cannot take at once wait their turn; each is timed from its 201.
            timeout=httpx.Timeout(60, pool=None),
            limits=httpx.Limits(max_connections=CONNECTIONS),
            headers={"Authorization": f"Bearer {dev_token(home, 'case-officer')}"},
        ) as client:
            warm: dict[str, float] = {}
            await _file(client, warm)  # every consumer joined and caught up before timing
            await _all_applied(conn, list(warm), time.monotonic() + WARM_UP_SECONDS)
            filed: dict[str, float] = {}
            sent: dict[str, float] = {}
            turns = asyncio.Semaphore(CONNECTIONS)
            idle_from = cpu_by_kind(supervisor)
            await asyncio.sleep(IDLE_SECONDS)  # measuring, not waiting for anything
            cpu_before = cpu_by_kind(supervisor)
            idle = _spent(idle_from, cpu_before)
            began = time.monotonic()
            posts = []
            for number in range(count):
                delay = began + number / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                posts.append(asyncio.create_task(_file_in_turn(client, filed, sent, turns)))
            await asyncio.gather(*posts)
            answered_rate = count / (time.monotonic() - began)
        applied = await _all_applied(conn, list(filed), time.monotonic() + 300)
        busy = _spent(cpu_before, await _once_quiet(supervisor, sum(idle.values()) / IDLE_SECONDS))
        await conn.close()
        replica = await _replica_times(running.kafka_bootstrap or "", set(filed), trust_of(home))
    finally:
        await asyncio.to_thread(supervisor.stop)
    latencies = [
        (at.timestamp() - filed[case_id]) * 1000
        for per_case in applied.values()
        for case_id, at in per_case.items()
    ]
    p50, p99, worst = _percentiles(latencies)
    from_request = [
        (at.timestamp() - sent[case_id]) * 1000
        for per_case in applied.values()
        for case_id, at in per_case.items()
    ]
    s50, s99, _ = _percentiles(from_request)
    answered = [(filed[case] - sent[case]) * 1000 for case in filed]
    a50, a99, _ = _percentiles(answered)
    to_replica = [(at - filed[case]) * 1000 for case, (at, _) in replica.items()]
    # a case whose list entry was not read back has no signing time: left out, not 1970
    published = [(at - signed) * 1000 for at, signed in replica.values() if signed]
    r50, r99, rmax = _percentiles(to_replica)
    q50, q99, _ = _percentiles(published)
    figures: list[dict[str, Any]] = [
        {"figure": "cases filed over HTTP", "value": count, "unit": "cases"},
        {"figure": "rate offered", "value": rate, "unit": "cases/s"},
        {"figure": "rate answered (all 201s in)", "value": answered_rate, "unit": "cases/s"},
        {"figure": "POST to its 201 p50", "value": a50, "unit": "ms"},
        {"figure": "POST to its 201 p99", "value": a99, "unit": "ms"},
        {"figure": "POST to department block p50", "value": s50, "unit": "ms"},
        {"figure": "POST to department block p99", "value": s99, "unit": "ms"},
        {"figure": "201 to department block p50", "value": p50, "unit": "ms"},
        {"figure": "201 to department block p99", "value": p99, "unit": "ms"},
        {"figure": "201 to department block max", "value": worst, "unit": "ms"},
        {"figure": "201 to subscriber replica p50", "value": r50, "unit": "ms"},
        {"figure": "201 to subscriber replica p99", "value": r99, "unit": "ms"},
        {"figure": "201 to subscriber replica max", "value": rmax, "unit": "ms"},
        {"figure": "list entry published to replica p50", "value": q50, "unit": "ms"},
        {"figure": "list entry published to replica p99", "value": q99, "unit": "ms"},
        *_cpu_figures(idle, busy, IDLE_SECONDS, count),
    ]
    if rate != ISSUE_RATE:
        return figures
    return [
        {**row, "target": ISSUE_TARGETS[row["figure"]]} if row["figure"] in ISSUE_TARGETS else row
        for row in figures
    ]
