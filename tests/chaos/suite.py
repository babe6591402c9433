"""The fault suite: cases flow through the whole system while faults are injected, then every
department's blocks and every subscriber's replica are compared with what the registry says
must hold.

The system is `make run`'s own supervisor (embedded broker and Postgres, every service, no
demo feed). A feeder files cases over HTTP at a steady rate and revokes some of them; only
what the registry accepted (201/200) is expected. Faults, in order: kill -9 of the department
host, the system host (relay, blocklist builder, feedback tracker) and a subscriber (each
started again, as a service manager would); a restart of the broker (memory only: everything
on it is gone, and recovery is by outbox replay); Postgres stopped for a while; the broker
paused (SIGSTOP).

Figures: lost (an effect the registry calls for that never happened: a block not applied, a
lift not applied, a replica entry missing), doubled (an effect applied more than once: a
department's audit trail deciding the same apply or lift twice, a case listed twice in an
entry), stray (an effect nobody called for).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from events.authorities import demo_subscriber
from events.catalogue import load_catalogue
from events.privacy import SubjectHasher, parse_subject_id
from events.subject_keys import read_measure_keys
from services.access import dev_token
from services.config import load_settings
from services.entrypoints.run import Supervisor
from services.runtime.processes import free_port
from tests.support import case_body
from tests.support import filing_measures as support_filing_measures

REVOKE_EVERY = 4  # every fourth accepted case is revoked by a court soon after


@dataclass(frozen=True)
class Fault:
    """One fault: what it does, for how long, and how the system is let back."""

    name: str
    inject: Callable[[Supervisor], object]
    heal: Callable[[Supervisor], object]
    hold: float = 0.0  # seconds between inject and heal


def _kill(service: str) -> Fault:
    return Fault(
        f"kill -9 {service}",
        lambda s: s.kill(service),
        lambda s: s.respawn(service),
        hold=2.0,
    )


def _broker(s: Supervisor) -> Any:
    if s.broker is None:
        raise RuntimeError("the fault suite needs the embedded broker")
    return s.broker


def _postgres(s: Supervisor) -> Any:
    if s.postgres is None:
        raise RuntimeError("the fault suite needs the embedded Postgres")
    return s.postgres


def _restart_broker() -> Fault:
    return Fault("restart the broker (memory wiped)", lambda s: s.restart_broker(), lambda s: None)


def _outage(
    what: str,
    seconds: float,
    down: Callable[[Supervisor], object],
    up: Callable[[Supervisor], object],
) -> Fault:
    """`down`, held for `seconds`, then `up`; named with how long it lasts."""
    return Fault(f"{what} for {seconds:.0f} s", down, up, hold=seconds)


def _stop_postgres(seconds: float) -> Fault:
    return _outage(
        "stop Postgres", seconds, lambda s: _postgres(s).stop(), lambda s: _postgres(s).start()
    )


def _pause_broker(seconds: float) -> Fault:
    return _outage(
        "pause the broker", seconds, lambda s: _broker(s).pause(), lambda s: _broker(s).resume()
    )


SUBSCRIBER = f"subscriber-{demo_subscriber('power_supply').code}"

PLANS: dict[str, tuple[Fault, ...]] = {
    "full": (
        _kill("department-host"),
        _kill("system-host"),  # the blocklist builder and feedback tracker (#19)
        _kill("relay"),  # the registry's relay runs alone (#19)
        _kill(SUBSCRIBER),
        _restart_broker(),
        _stop_postgres(20),
        _pause_broker(10),
        _kill("department-host"),
    ),
    "small": (
        _kill("department-host"),
        _kill("system-host"),
        _kill(SUBSCRIBER),
        _restart_broker(),
        _stop_postgres(5),
        _pause_broker(3),
    ),
}


@dataclass
class Feeder:
    """Files cases over HTTP and revokes every REVOKE_EVERY-th; remembers what was accepted."""

    client: httpx.AsyncClient
    rate: float
    filed: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    refused: int = 0  # answers other than success while a fault lasted; retried

    async def _post(self, path: str, body: dict[str, Any], stop: asyncio.Event) -> Any:
        """POST until accepted; the same Idempotency-Key on every try, so never twice."""
        key = str(uuid.uuid4())
        while True:
            try:
                response = await self.client.post(path, json=body, headers={"Idempotency-Key": key})
                if response.status_code in (200, 201):
                    return response.json()
                if response.status_code < 500:
                    raise RuntimeError(f"{path} refused: {response.status_code} {response.text}")
            except httpx.TransportError:
                pass
            self.refused += 1
            if stop.is_set():
                return None  # never accepted: nothing is expected of it
            await asyncio.sleep(0.5)

    async def run(self, stop: asyncio.Event) -> None:
        began = time.monotonic()
        number = 0
        while not stop.is_set():
            delay = began + number / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            number += 1
            answer = await self._post("/v1/cases", case_body(("cultivated", "1.5")), stop)
            if answer is None:
                continue
            self.filed.append(answer["case_id"])
            if len(self.filed) % REVOKE_EVERY == 0:
                case_id = self.filed[-1]
                body = {"court": "孝义市人民法院", "decision_no": "(2026)晋0781行初1号"}
                body["revoked_on"] = "2026-11-01"
                if await self._post(f"/v1/cases/{case_id}/revocation", body, stop) is not None:
                    self.revoked.append(case_id)


@dataclass
class Tally:
    """How many effects were checked, how many of them went wrong by kind (lost, doubled,
    stray), and the first few examples."""

    expected: int = 0
    wrong: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def note(self, kind: str, what: str) -> None:
        self.wrong[kind] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{kind}: {what}")


# The suite's cases: each has its own subject and site, all the same facts (business
# premises of an unpermitted construction project on cultivated land).
CASE = case_body(("cultivated", "1.5"))


def filing_measures() -> list[tuple[str, str]]:
    """(department, measure) for every measure filing one of the suite's cases starts
    (decided from its facts, as the registry decides): what every case must get."""
    started = support_filing_measures(CASE)
    return [
        (department.code, measure.code)
        for department in load_catalogue().departments
        for measure in department.measures
        if measure.code in started
    ]


async def _registry(conn: asyncpg.Connection) -> dict[str, tuple[str, str]]:
    rows = await conn.fetch("SELECT case_id, status, subject_id FROM cases")
    return {row["case_id"]: (row["status"], row["subject_id"]) for row in rows}


async def _departments(conn: asyncpg.Connection, registry: dict[str, tuple[str, str]]) -> Tally:
    tally = Tally()
    for code, measure in filing_measures():
        rows = await conn.fetch(
            f"SELECT case_id, lifted_at IS NULL AS active FROM dept_{code}.blocks "
            "WHERE measure = $1",
            measure,
        )
        actual = {row["case_id"]: row["active"] for row in rows}
        for case_id, (status, _) in registry.items():
            tally.expected += 1
            where = f"{code}.{measure} {case_id}"
            if case_id not in actual:
                tally.note("lost", f"{where}: no block")
            elif status == "revoked" and actual[case_id]:
                tally.note("lost", f"{where}: revoked but still blocked")
            elif status != "revoked" and not actual[case_id]:
                tally.note("stray", f"{where}: lifted but the case stands")
        for case_id in actual.keys() - registry.keys():
            tally.note("stray", f"{code}.{measure} {case_id}: not a registry case")
        decisions = await conn.fetch(
            f"SELECT case_id, action, count(*) AS n FROM dept_{code}.audit_log "
            "WHERE action = ANY($1::text[]) GROUP BY case_id, action HAVING count(*) > 1",
            [f"apply {measure}", f"lift {measure}"],
        )
        for row in decisions:
            for _ in range(row["n"] - 1):
                tally.note("doubled", f"{code}: {row['action']} {row['case_id']} again")
    return tally


def _replica(path: Path, measure: str) -> dict[bytes, list[str]]:
    if not path.exists():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT subject, cases FROM entries WHERE measure = ?", (measure,))
        return {bytes(s): [c["case_id"] for c in json.loads(cases)] for s, cases in rows}


def _subscribers(
    home: Path, hashers: dict[str, SubjectHasher], registry: dict[str, tuple[str, str]]
) -> Tally:
    tally = Tally()
    lists = load_catalogue().blocklist_measures()
    for measure, department in lists.items():
        wanted: dict[bytes, set[str]] = {}
        for case_id, (status, subject_id) in registry.items():
            if status != "revoked":
                subject = hashers[measure].digest(parse_subject_id(subject_id)[1])
                wanted.setdefault(subject, set()).add(case_id)
        code = demo_subscriber(department.code).code
        actual = _replica(home / "subscribers" / f"{code}.sqlite", measure)
        tally.expected += len(wanted)
        for subject, cases in wanted.items():
            listed = actual.get(subject, [])
            for case_id in sorted(cases - set(listed)):
                tally.note("lost", f"{code}: {case_id} missing from its entry")
        for subject, listed in actual.items():
            for case_id, times in Counter(listed).items():
                if times > 1:
                    tally.note("doubled", f"{code}: {case_id} listed {times} times")
            for case_id in sorted(set(listed) - wanted.get(subject, set())):
                revoked = registry.get(case_id, ("", ""))[0] == "revoked"
                tally.note(
                    "lost" if revoked else "stray",
                    f"{code}: {case_id} still listed" + (" after revocation" if revoked else ""),
                )
    return tally


@dataclass
class Outcome:
    plan: str
    faults: list[str]
    cases_accepted: int
    revocations_accepted: int
    events: int
    departments: Tally
    subscribers: Tally
    registry_lost: int
    refused_during_faults: int
    restarts: list[str]
    converged_in: float

    @property
    def lost(self) -> int:
        return self._wrong("lost") + self.registry_lost

    @property
    def doubled(self) -> int:
        return self._wrong("doubled")

    @property
    def stray(self) -> int:
        return self._wrong("stray")

    def _wrong(self, kind: str) -> int:
        return self.departments.wrong[kind] + self.subscribers.wrong[kind]

    def summary(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "faults injected": len(self.faults),
            "faults": self.faults,
            "cases accepted": self.cases_accepted,
            "revocations accepted": self.revocations_accepted,
            "events": self.events,
            "department effects checked": self.departments.expected,
            "replica entries checked": self.subscribers.expected,
            "lost": self.lost,
            "doubled": self.doubled,
            "stray": self.stray,
            "requests refused while faulted (retried)": self.refused_during_faults,
            "restarted by the service manager": self.restarts,
            "converged in s": round(self.converged_in, 1),
            "examples": self.departments.examples + self.subscribers.examples,
        }


def _restart_crashed(supervisor: Supervisor, restarted: list[str]) -> None:
    """A service that ended is started again, as `make run`'s supervisor or Kubernetes
    would, and named in the outcome: a department exits on purpose (75) when its broker
    came back empty; anything else is a crash to look into."""
    for service, proc in list(supervisor.children):
        if proc.poll() is not None:
            restarted.append(f"{service.name} (exit {proc.returncode})")
            supervisor.respawn(service.name)


async def _inject_all(
    supervisor: Supervisor, plan: tuple[Fault, ...], spacing: float, restarted: list[str]
) -> list[str]:
    injected = []
    for fault in plan:
        await asyncio.sleep(spacing)  # cases flow between faults
        _restart_crashed(supervisor, restarted)
        print(f"chaos: {fault.name}", flush=True)
        await asyncio.to_thread(fault.inject, supervisor)
        injected.append(fault.name)
        await asyncio.sleep(fault.hold)  # how long the fault lasts
        await asyncio.to_thread(fault.heal, supervisor)
    await asyncio.sleep(spacing)
    return injected


async def _converge(
    database: str,
    home: Path,
    hasher: dict[str, SubjectHasher],
    supervisor: Supervisor,
    restarted: list[str],
    timeout: float,
) -> tuple[dict[str, tuple[str, str]], Tally, Tally, float]:
    began = time.monotonic()
    while True:
        _restart_crashed(supervisor, restarted)
        try:
            conn = await asyncpg.connect(database)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(1)
            continue
        try:
            registry = await _registry(conn)
            departments = await _departments(conn, registry)
        finally:
            await conn.close()
        subscribers = _subscribers(home, hasher, registry)
        wrong = departments.wrong + subscribers.wrong
        settled = wrong["lost"] + wrong["stray"] == 0
        waited = time.monotonic() - began
        if settled or waited > timeout:
            return registry, departments, subscribers, waited
        await asyncio.sleep(1)


async def run(plan: str = "small", *, rate: float = 4.0, spacing: float = 8.0) -> Outcome:
    home = Path(tempfile.mkdtemp(prefix="redline-chaos-"))
    port = free_port()
    settings = load_settings(
        {
            "REDLINE_HOME": str(home),
            "REDLINE_DEMO": "0",
            "REDLINE_API_PORT": str(port),
            "REDLINE_PROMETHEUS": "off",
        }
    )
    supervisor = Supervisor(settings)
    running = await asyncio.to_thread(supervisor.start)
    restarted: list[str] = []
    try:
        # Each list keys its subjects under its own key, derived from the master (#18 item 9).
        keys = read_measure_keys(running.subject_key, load_catalogue().blocklist_measures())
        hasher = {measure: SubjectHasher(key) for measure, key in keys.items()}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=httpx.Timeout(10),
            headers={"Authorization": f"Bearer {dev_token(home, 'case-officer')}"},
        ) as client:
            feeder = Feeder(client, rate)
            stop = asyncio.Event()
            feeding = asyncio.create_task(feeder.run(stop))
            try:
                faults = await _inject_all(supervisor, PLANS[plan], spacing, restarted)
            finally:
                stop.set()
                await feeding
        registry, departments, subscribers, waited = await _converge(
            running.database_url or "", home, hasher, supervisor, restarted, timeout=300
        )
        conn = await asyncpg.connect(running.database_url)
        try:
            events = await conn.fetchval("SELECT count(*) FROM outbox")
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(supervisor.stop)
    accepted_missing = [case for case in feeder.filed if case not in registry]
    not_revoked = [case for case in feeder.revoked if registry.get(case, ("",))[0] != "revoked"]
    return Outcome(
        plan=plan,
        faults=faults,
        cases_accepted=len(feeder.filed),
        revocations_accepted=len(feeder.revoked),
        events=events,
        departments=departments,
        subscribers=subscribers,
        registry_lost=len(accepted_missing) + len(not_revoked),
        refused_during_faults=feeder.refused,
        restarts=restarted,
        converged_in=waited,
    )
