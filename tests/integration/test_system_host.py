"""The system host on the real broker and Postgres (#19): the relay, feedback tracker,
blocklist builder, monitor and audit anchor in one process, each as its own role; the
builder, failing at every start, is started again while the others go on, and each
service's metrics route serves only its own series."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from events.models import CaseDetails
from events.topics import VIOLATIONS
from services.config import Settings
from services.entrypoints.system_host import DATABASE_URLS, ROLES
from services.metrics import BusCollector
from services.registry.handlers import Registry
from services.runtime.devkeys import ensure_dev_keys
from services.runtime.processes import free_port, spawn, stop_processes
from tests.conftest import Stack
from tests.support import case_body, eventually, read_topic, service_env

SERVICES = tuple(ROLES)
MONITOR_FAMILIES = {family.name for family in BusCollector().collect()}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("system-host-logs")


@pytest.fixture(scope="module")
def port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def host(
    settings: Settings, stack: Stack, logs: Path, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """The host as `make run` starts it, each service as its own role; the builder's
    subject key file is missing, so it fails at every start (it alone reads that key)."""
    ensure_dev_keys(settings.home)
    urls = {name: stack.roles[role] for name, role in ROLES.items()}
    env = service_env(
        settings,
        DATABASE_URL=urls["monitor"],  # completes the pair only: the map names every service
        REDLINE_METRICS_PORT=str(port),
        REDLINE_SUBJECT_KEY=str(logs / "no-such-subject.key"),
        **{DATABASE_URLS: json.dumps(urls)},
    )
    proc = spawn(
        [sys.executable, "-m", "services.entrypoints.system_host"],
        log_path=logs / "system-host.log",
        env=env,
    )
    yield proc
    stop_processes([proc])
    assert proc.returncode == 0, (logs / "system-host.log").read_text()


def _scrape(port: int, route: str) -> tuple[int, dict[str, list[dict[str, str]]]]:
    """A route's status and its series: family name -> each sample's labels."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics/{route}", timeout=5)
    families: dict[str, list[dict[str, str]]] = {}
    text = response.text if response.status_code != 404 else ""  # a 404 is an HTML page
    for family in text_string_to_metric_families(text):
        families.setdefault(family.name, []).extend(dict(s.labels) for s in family.samples)
    return response.status_code, families


async def test_the_others_go_on_while_a_failing_service_is_started_again(
    host: subprocess.Popen[bytes], registry: Registry, settings: Settings, logs: Path, port: int
) -> None:
    log = logs / "system-host.log"

    async def restarted() -> bool:
        return log.read_text().count("blocklist: failed; starting it again") >= 2

    await eventually(restarted, timeout=20, what="the builder failing twice")
    case = await registry.file_case(CaseDetails.model_validate(case_body()))

    async def published() -> bool:
        records = await read_topic(settings.kafka_bootstrap or "", VIOLATIONS.name)
        return any(record.key == case.case_id.encode() for record in records)

    await eventually(published, timeout=20, what="the relay publishing the filed case")

    async def blocklist_down() -> bool:
        return _scrape(port, "blocklist")[0] == 503

    await eventually(blocklist_down, timeout=10, what="the builder's target down")
    relay = _scrape(port, "relay")
    assert relay[0] == 200
    assert {"outbox": "registry", "topic": VIOLATIONS.name} in relay[1]["redline_events_published"]
    assert _scrape(port, "feedback")[0] == _scrape(port, "audit-anchor")[0] == 200
    assert host.poll() is None, log.read_text()


async def test_each_service_connects_as_its_own_role(
    host: subprocess.Popen[bytes], db: asyncpg.Pool
) -> None:
    running = {"redline_relay", "redline_feedback", "redline_monitor", "redline_audit_anchor"}

    async def connected() -> bool:
        rows = await db.fetch("SELECT DISTINCT usename FROM pg_stat_activity")
        return running <= {row["usename"] for row in rows}

    await eventually(connected, timeout=20, what="a connection of each service's role")


async def test_each_route_serves_its_own_series_only(
    host: subprocess.Popen[bytes], port: int
) -> None:
    async def started() -> bool:
        status, families = _scrape(port, "monitor")
        consuming = "redline_events_consumed" in _scrape(port, "feedback")[1]
        return status == 200 and "redline_consumer_lag_messages" in families and consuming

    await eventually(started, timeout=20, what="the monitor's first read, the tracker consuming")
    _, monitor = _scrape(port, "monitor")
    assert set(monitor) <= MONITOR_FAMILIES, set(monitor) - MONITOR_FAMILIES
    # Its figures about the others carry their labels, and are served on its route alone.
    assert {"outbox": "feedback"} in monitor["redline_outbox_backlog_events"]
    lag = {labels["consumer"] for labels in monitor["redline_consumer_lag_messages"]}
    assert {"feedback_tracker", "blocklist_builder"} <= lag
    _, feedback = _scrape(port, "feedback")
    assert {labels["consumer"] for labels in feedback["redline_events_consumed"]} == {
        "feedback_tracker"
    }
    _, hosted = _scrape(port, "system-host")
    assert any(name.startswith("process_") for name in hosted)
    assert not set(feedback) & MONITOR_FAMILIES and not set(hosted) & MONITOR_FAMILIES
    assert not any(name.startswith("process_") for name in feedback)
    _, relay = _scrape(port, "relay")
    assert not set(relay) & MONITOR_FAMILIES and "redline_events_consumed" not in relay
    status, everything = _scrape(port, "")
    assert status == 200 and MONITOR_FAMILIES & set(everything)
    assert _scrape(port, "reports")[0] == 404
