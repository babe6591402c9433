"""The monitor's figures on the real broker and Postgres, against counts taken directly."""

from __future__ import annotations

import asyncio

import asyncpg
from prometheus_client import CollectorRegistry, generate_latest

from events.models import CaseDetails
from events.topics import VIOLATIONS
from services.config import Settings
from services.entrypoints.monitor import consumer_groups, run_monitor
from services.metrics import BusCollector
from services.registry.handlers import Registry
from tests.support import case_body, eventually


async def test_monitor_reports_lag_backlog_and_cases_by_township(
    settings: Settings, registry: Registry, db: asyncpg.Pool
) -> None:
    await registry.file_case(CaseDetails.model_validate(case_body(("cultivated", "12"))))
    collector = BusCollector()
    stop = asyncio.Event()
    task = asyncio.create_task(run_monitor(settings, stop, collector, every=0.2))
    try:

        async def read() -> bool:
            return bool(collector.snapshot.consumer_lag) and bool(collector.snapshot.cases_filed)

        await eventually(read, timeout=30, what="a first snapshot")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    snapshot = collector.snapshot
    assert set(snapshot.consumer_lag) >= {(label, VIOLATIONS.name) for label in consumer_groups()}
    assert all(lag >= 0 for lag in snapshot.consumer_lag.values())
    by_township = {
        row["township"]: row["n"]
        for row in await db.fetch("SELECT township, count(*) AS n FROM cases GROUP BY township")
    }
    assert snapshot.cases_filed == by_township
    referred = await db.fetchval(
        "SELECT count(*) FROM cases WHERE accountability_started_at IS NOT NULL"
    )
    assert sum(snapshot.accountability_referrals.values()) == referred > 0
    waiting = {
        row["to_body"]: row["n"]
        for row in await db.fetch(
            "SELECT to_body, count(*) AS n FROM referrals "
            "WHERE status IN ('sent', 'accepted') GROUP BY to_body"
        )
    }
    # The 12 mu case referred itself; every receiver has a series, 0 when nothing waits.
    assert {"public_security", "discipline", "city_government"} <= set(waiting)
    assert {k: v for k, v in snapshot.referrals_open.items() if v} == waiting
    assert snapshot.referrals_open["court"] == 0 or "court" in waiting
    assert "registry" in snapshot.outbox_backlog and "registry" in snapshot.outbox_oldest_age

    registry_ = CollectorRegistry()
    registry_.register(collector)
    text = generate_latest(registry_).decode()
    assert 'redline_cases_filed_total{township="duizhen"}' in text
    assert "redline_consumer_lag_messages{" in text
    [read_at] = [
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("redline_monitor_last_read_timestamp_seconds ")
    ]
    assert read_at == snapshot.read_at > 0
