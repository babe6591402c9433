"""The blocklist builder and the feedback tracker scaled out to two workers of one consumer
group, as test_department_workers does for a department: one worker stopped mid-stream
hands its partitions to the other, and every event still takes effect exactly once (each
block, each list entry's cases, each response row), its id claimed once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import asyncpg
import pytest

from events.authorities import NATURAL_RESOURCES
from events.catalogue import load_catalogue
from events.codec import encode_signed
from events.models import CaseFiled
from events.topics import BLOCKLIST_MEASURES
from services.blocklist.domain import owners
from services.config import Settings
from services.entrypoints import blocklist as builder_entry
from services.entrypoints import feedback as tracker_entry
from services.feedback.domain import requirements
from services.runtime.devkeys import ensure_dev_keys, load_dev_signer
from tests.conftest import Stack
from tests.integration.test_departments import WAIT, _publish
from tests.support import case_body, eventually, filed_event, group_members

# Longer than the suite's 30 s per test: two workers of one group, one leaving mid-stream.
pytestmark = pytest.mark.timeout(120)

_NOW = datetime(2026, 1, 1, tzinfo=UTC)  # when does not matter: which rows are owed
Worker = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]]


async def _two_workers_and_one_leaving(
    stack: Stack,
    settings: Settings,
    group: str,
    worker: Worker,
    done: Callable[[list[str]], Awaitable[bool]],
) -> list[CaseFiled]:
    """Three waves of filings: to one worker, to two, and to the one left after the
    other stops mid-stream. Returns the events published."""
    ensure_dev_keys(settings.home)
    signer = load_dev_signer(settings.home, NATURAL_RESOURCES)
    tag = uuid.uuid4().hex[:6]
    waves = [
        [filed_event(case_body(), f"RL-GROUP-{tag}-{wave}-{n:02d}") for n in range(15)]
        for wave in range(3)
    ]

    async def publish(events: list[CaseFiled]) -> None:
        signed = [encode_signed(e, signer, source=NATURAL_RESOURCES.source)[1] for e in events]
        await _publish(stack, [(e.case_id, raw) for e, raw in zip(events, signed, strict=True)])

    def ids(events: list[CaseFiled]) -> list[str]:
        return [e.case_id for e in events]

    stops = [asyncio.Event(), asyncio.Event()]
    first = asyncio.create_task(worker(settings, stops[0]))
    second: asyncio.Task[None] | None = None
    try:
        await eventually(lambda: _alone(stack, group), timeout=WAIT, what="the first worker")
        await publish(waves[0])
        await eventually(lambda: done(ids(waves[0])), timeout=WAIT, what="the first wave")
        second = asyncio.create_task(worker(settings, stops[1]))

        async def both() -> bool:
            return await group_members(stack.kafka, group) == 2

        await eventually(both, timeout=WAIT, what="the second worker joining the group")
        await publish(waves[1])
        stops[0].set()  # leaves the group mid-stream: the second takes every partition
        await asyncio.wait_for(first, WAIT)
        await publish(waves[2])
        every = [e for wave in waves for e in wave]
        await eventually(lambda: done(ids(every)), timeout=WAIT, what="every wave")
    finally:
        for stop in stops:
            stop.set()
        await asyncio.gather(*(t for t in (first, second) if t is not None))
    return every


async def _alone(stack: Stack, group: str) -> bool:
    return await group_members(stack.kafka, group) == 1


def _every_case_in(database: str, table: str) -> Callable[[list[str]], Awaitable[bool]]:
    """Whether `table` holds rows for every one of the cases (not before a worker made it)."""

    async def present(case_ids: list[str]) -> bool:
        conn = await asyncpg.connect(database)
        try:
            found = await conn.fetchval(
                f"SELECT count(DISTINCT case_id) FROM {table} WHERE case_id = ANY($1::text[])",
                case_ids,
            )
        except asyncpg.UndefinedTableError:
            return False
        finally:
            await conn.close()
        return bool(found == len(case_ids))

    return present


async def _builder(settings: Settings, stop: asyncio.Event) -> None:
    await builder_entry.run_builder(settings, stop, heartbeat_every=0.5)


async def _tracker(settings: Settings, stop: asyncio.Event) -> None:
    await tracker_entry.run_tracker(settings, stop, scan_every=3600)


Rows = list[asyncpg.Record]


async def _every_case_listed_once(
    conn: asyncpg.Connection, events: list[CaseFiled], rows: Rows
) -> None:
    """Each case blocked for each measure a list publishes, each filing claimed once."""
    listed = owners(load_catalogue())
    wanted = {(e.case_id, d.measure) for e in events for d in e.starts if d.measure in listed}
    assert sorted((r["case_id"], r["measure"]) for r in rows) == sorted(wanted)
    assert any(m in BLOCKLIST_MEASURES for _, m in wanted)  # some lists are published
    claimed = await conn.fetchval(
        "SELECT count(*) FROM blocklist.consumed_events WHERE event_id = ANY($1::text[])",
        sorted({r["applied_by"] for r in rows}),
    )
    assert claimed == len(events)  # each filing claimed once, and it made the blocks


async def _every_answer_owed_once(
    conn: asyncpg.Connection, events: list[CaseFiled], rows: Rows
) -> None:
    """Each requirement of each filing owed once, each filing claimed once."""
    catalogue = load_catalogue()
    wanted = sorted(
        (r.case_id, r.department, r.measure, r.action)
        for e in events
        for r in requirements(catalogue, e, _NOW, "x")
    )
    assert sorted((r["case_id"], r["department"], r["measure"], r["action"]) for r in rows) == (
        wanted
    )
    # Each requirement written once: a second worker acting on a filing again would
    # have drawn further requirement numbers for the same rows.
    seqs = sorted(r["required_seq"] for r in rows)
    assert len(set(seqs)) == len(seqs)
    claimed = await conn.fetchval(
        "SELECT count(*) FROM consumed_events WHERE consumer = 'feedback_tracker' "
        "AND event_id IN (SELECT DISTINCT required_by FROM responses "
        "WHERE case_id = ANY($1::text[]))",
        [e.case_id for e in events],
    )
    assert claimed == len(events)


@dataclass(frozen=True)
class ScaledOut:
    """A service run as two workers of one group, and what it must have done once."""

    entry: ModuleType  # its GROUP is made the test's own
    worker: Worker
    table: str  # its effects: rows keyed by case
    took_each_once: Callable[[asyncpg.Connection, list[CaseFiled], Rows], Awaitable[None]]


SERVICES = {
    "builders": ScaledOut(builder_entry, _builder, "blocklist.blocks", _every_case_listed_once),
    "trackers": ScaledOut(tracker_entry, _tracker, "responses", _every_answer_owed_once),
}


@pytest.mark.parametrize("service", SERVICES.values(), ids=SERVICES.keys())
async def test_two_workers_with_one_leaving_act_on_every_event_once(
    service: ScaledOut, own_database: Settings, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = f"{service.entry.GROUP}-{uuid.uuid4().hex[:6]}"  # its own offsets: from the start
    monkeypatch.setattr(service.entry, "GROUP", group)
    database = own_database.database_url or ""
    done = _every_case_in(database, service.table)
    events = await _two_workers_and_one_leaving(stack, own_database, group, service.worker, done)

    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch(
            f"SELECT * FROM {service.table} WHERE case_id = ANY($1::text[])",
            [e.case_id for e in events],
        )
        await service.took_each_once(conn, events, rows)
    finally:
        await conn.close()
