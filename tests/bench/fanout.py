"""Fan-out latency: cases filed over HTTP at a steady rate with the whole system running;
the time from each 201 to each department's block and to a subscriber's replica.

It runs its own system (`make run`'s supervisor, demo feed off) on a fresh embedded broker
and Postgres, so the other workloads' backlogs do not count against it.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from services.config import load_settings
from services.departments.catalogue import Stage, load_catalogue
from services.entrypoints.run import Supervisor
from services.runtime.processes import free_port
from tests.support import case_body

RATE_PER_SECOND = 50
WARM_UP_SECONDS = 240.0


def _filing_departments() -> list[str]:
    return [
        d.code
        for d in load_catalogue().departments
        if any(m.starts_at is Stage.filing for m in d.measures)
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


async def _file(client: httpx.AsyncClient, filed: dict[str, float]) -> None:
    response = await client.post("/v1/cases", json=case_body(("cultivated", "2")))
    at = time.time()
    response.raise_for_status()
    filed[response.json()["case_id"]] = at


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, ordered[-1]


async def run(kafka: str, database: str, count: int) -> list[dict[str, Any]]:
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
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            warm: dict[str, float] = {}
            await _file(client, warm)  # every consumer joined and caught up before timing
            await _all_applied(conn, list(warm), time.monotonic() + WARM_UP_SECONDS)
            filed: dict[str, float] = {}
            began = time.monotonic()
            posts = []
            for number in range(count):
                delay = began + number / RATE_PER_SECOND - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                posts.append(asyncio.create_task(_file(client, filed)))
            await asyncio.gather(*posts)
            offered = count / (time.monotonic() - began)
        applied = await _all_applied(conn, list(filed), time.monotonic() + 300)
        await conn.close()
    finally:
        await asyncio.to_thread(supervisor.stop)
    latencies = [
        (at.timestamp() - filed[case_id]) * 1000
        for per_case in applied.values()
        for case_id, at in per_case.items()
    ]
    p50, p99, worst = _percentiles(latencies)
    return [
        {"figure": "cases filed over HTTP", "value": count, "unit": "cases"},
        {"figure": "offered rate", "value": offered, "unit": "cases/s"},
        {"figure": "201 to department block p50", "value": p50, "unit": "ms"},
        {"figure": "201 to department block p99", "value": p99, "unit": "ms", "target": 100},
        {"figure": "201 to department block max", "value": worst, "unit": "ms"},
    ]
