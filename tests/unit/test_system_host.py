"""The bus's own services co-hosted by `make run` (#19): one system-host process, scraped as
one target per service under its old name, each service given its own role's URL, and one
that fails started again while the others go on."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.config import Settings, load_settings
from services.entrypoints import run, system_host
from services.entrypoints.run import Supervisor, child_services, write_scrape_targets
from services.entrypoints.system_host import (
    ROLES,
    HostedService,
    owner,
    service_names,
    system_urls,
)
from services.errors import ConfigError
from tests.support import eventually

FIVE = {"relay", "feedback", "blocklist", "monitor", "audit-anchor"}
ALERTS = run.PROMETHEUS_CONFIG / "alerts.yml"


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    base = Settings(kafka_bootstrap=None, database_url=None, home=tmp_path, demo=False)
    return replace(base, **changes)


def test_make_run_starts_the_relay_alone_and_one_system_host_for_the_other_four(
    tmp_path: Path,
) -> None:
    children = {child.name: child for child in child_services(_settings(tmp_path))}
    assert "system-host" in children and FIVE & set(children) == {"relay"}
    relay = children["relay"]
    assert relay.module == "services.entrypoints.relay" and relay.db_role == "redline_relay"
    assert ("REDLINE_METRICS_PORT", str(relay.metrics_port)) in relay.env
    host = children["system-host"]
    assert host.module == "services.entrypoints.system_host"
    assert service_names(host.args) == ["feedback", "blocklist", "monitor", "audit-anchor"]
    assert dict(host.hosted) == {
        "feedback": "redline_feedback",
        "blocklist": "redline_blocklist",
        "monitor": "redline_monitor",
        "audit-anchor": "redline_audit_anchor",
    }
    hosted = FIVE - {"relay"}
    assert dict(host.scrape) == {name: f"/metrics/{name}" for name in {*hosted, "system-host"}}
    assert ("REDLINE_METRICS_PORT", str(host.metrics_port)) in host.env


def test_make_run_at_rest_is_at_most_ten_processes_of_its_own(tmp_path: Path) -> None:
    """Demo and Prometheus off, as BENCHMARKS measures: the supervisor and the broker, and
    its children (Postgres, a server of its own, apart)."""
    settings = _settings(tmp_path, prometheus=False)
    assert settings.dev_keys  # embedded: the demo subscribers run too
    assert len(child_services(settings)) + 2 <= 10
    standalone = replace(settings, system_hosted=False)
    assert len(child_services(standalone)) - len(child_services(settings)) == len(FIVE) - 2


def test_each_service_is_a_target_of_its_own_name_the_alerts_still_find(tmp_path: Path) -> None:
    write_scrape_targets(tmp_path, child_services(_settings(tmp_path)))
    targets = json.loads((tmp_path / "prometheus" / "targets.json").read_text())
    paths = {t["labels"]["service"]: t["labels"].get("__metrics_path__") for t in targets}
    hosted = {name: f"/metrics/{name}" for name in FIVE - {"relay"}}
    assert {name: paths[name] for name in FIVE} == {**hosted, "relay": None}  # its own port
    rules = yaml.safe_load(ALERTS.read_text())["groups"]
    exprs = [rule["expr"] for group in rules for rule in group["rules"]]
    assert 'absent(up{job="redline", service="monitor"})' in exprs


def test_standalone_runs_the_five_as_processes_of_their_own(tmp_path: Path) -> None:
    settings = replace(load_settings({"REDLINE_SYSTEM": "standalone"}), home=tmp_path)
    assert not settings.system_hosted and load_settings({}).system_hosted
    children = {child.name: child for child in child_services(settings)}
    assert set(children) >= FIVE and "system-host" not in children
    for name in FIVE:
        assert children[name].db_role == ROLES[name]
        assert importlib.util.find_spec(children[name].module) is not None
    with pytest.raises(ConfigError, match="REDLINE_SYSTEM"):
        load_settings({"REDLINE_SYSTEM": "apart"})


def test_the_supervisor_gives_each_hosted_service_its_own_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: dict[str, str] = {}

    def spawn(argv: list[str], *, log_path: Path, env: Mapping[str, str]) -> Any:
        spawned.update(env)
        return None  # no process: only what it would be given is looked at

    monkeypatch.setattr(run, "spawn", spawn)
    supervisor = Supervisor(_settings(tmp_path))
    supervisor._role_urls = {role: f"postgresql://{role}@db/redline" for role in ROLES.values()}
    [host] = [c for c in child_services(_settings(tmp_path)) if c.name == "system-host"]
    supervisor._spawn(host)
    urls = json.loads(spawned["REDLINE_SYSTEM_DATABASE_URLS"])
    assert urls == {name: f"postgresql://{role}@db/redline" for name, role in host.hosted}
    assert len(set(urls.values())) == len(FIVE) - 1  # never one role for all
    hosted = load_settings({**spawned, "KAFKA_BOOTSTRAP": "broker:9092"})
    assert system_urls(hosted, list(dict(host.hosted))) == urls


def test_a_hosted_service_gets_its_own_url_or_is_refused_by_name(tmp_path: Path) -> None:
    own = {"relay": "postgresql://redline_relay@db/r", "monitor": "postgresql://m@db/r"}
    settings = _settings(tmp_path, database_url="postgresql://x@db/r", system_database_urls=own)
    assert system_urls(settings, ["relay", "monitor"]) == own
    with pytest.raises(ConfigError, match="no database URL for blocklist"):
        system_urls(settings, ["relay", "blocklist"])  # never DATABASE_URL in its stead
    wrong = replace(settings, system_database_urls={"relays": "postgresql://x@db/r"})
    with pytest.raises(ConfigError, match="no service called 'relays'"):
        system_urls(wrong, ["relay"])
    alone = replace(settings, system_database_urls={})
    assert system_urls(alone, ["relay"]) == {"relay": "postgresql://x@db/r"}
    assert service_names([]) == list(ROLES)
    with pytest.raises(ConfigError, match="no service called 'reporter'"):
        service_names(["relay", "reporter"])
    with pytest.raises(ConfigError, match="named twice"):
        service_names(["relay", "relay"])


def test_each_series_belongs_to_the_service_whose_labels_it_carries() -> None:
    assert owner({"outbox": "registry", "topic": "redline.violations.v1"}) == "relay"
    assert owner({"outbox": "feedback", "topic": "redline.acknowledgements.v1"}) == "feedback"
    assert owner({"consumer": "feedback_tracker", "reason": "undecodable"}) == "feedback"
    assert owner({"consumer": "blocklist_builder", "le": "0.1"}) == "blocklist"
    assert owner({"outbox": "blocklist"}) == "blocklist"
    assert owner({"consumer": "finance"}) is None
    assert owner({}) is None  # process_*, python_*: the host's own


async def test_a_failing_service_is_started_again_while_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HostedService, "restart_backoff", (0.01, 0.05))
    settings = _settings(tmp_path)
    attempts: list[int] = []
    ticks: list[int] = []

    async def failing(settings: Settings, stop: asyncio.Event) -> None:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise RuntimeError("cannot start")
        await stop.wait()

    async def steady(settings: Settings, stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(1)
            await asyncio.sleep(0.01)

    bad = HostedService("blocklist", settings, failing)
    good = HostedService("relay", settings, steady)
    stop = asyncio.Event()
    hosting = asyncio.create_task(system_host.host({"blocklist": bad, "relay": good}, stop))

    async def recovered() -> bool:
        return bad.running and good.running

    await eventually(recovered, timeout=5, what="the failed service running again")
    assert bad.restarts == 2 and len(attempts) == 3
    assert good.restarts == 0 and ticks
    stop.set()
    await asyncio.wait_for(hosting, 5)
    assert not bad.running and not good.running


async def test_a_service_that_ends_unasked_is_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(HostedService, "restart_backoff", (0.01, 0.05))
    runs: list[int] = []

    async def ends(settings: Settings, stop: asyncio.Event) -> None:
        runs.append(1)

    service = HostedService("monitor", _settings(tmp_path), ends)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))

    async def again() -> bool:
        return len(runs) >= 2

    await eventually(again, timeout=5, what="a second run")
    stop.set()
    await asyncio.wait_for(task, 5)
    assert service.restarts >= 1
