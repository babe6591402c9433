"""A real Prometheus, with the shipped config, against `make run`'s system and its demo
feed: every dashboard panel query and every alert expression parses and has data."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kafka import KafkaProducer

from events.topics import VIOLATIONS
from services.config import REPO_ROOT, load_settings
from services.entrypoints.run import Supervisor
from services.runtime.processes import free_port
from tests.support import required_tool

# Longer than the suite's 30 s per test: starts make run's whole system and waits for every panel's
# series.
pytestmark = pytest.mark.timeout(300)

DASHBOARDS = REPO_ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
# Grafana fills these in; a window long enough to span the whole test stands in for them.
GRAFANA_VARIABLES = {
    "$__rate_interval": "10m",
    "$__range": "1h",
    "$__interval": "1m",
    "$subscriber": ".*",
}
METRIC = re.compile(r"\b(redline_[a-z_]+|up)\b(?=\s*[{\[)]|\s*$|\s*[=!<>])")


def _queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node["expr"]
        for value in node.values():
            yield from _queries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _queries(value)


def panel_queries() -> set[str]:
    found: set[str] = set()
    for path in DASHBOARDS.rglob("*.json"):
        for query in _queries(json.loads(path.read_text())):
            for variable, value in GRAFANA_VARIABLES.items():
                query = query.replace(variable, value)  # noqa: PLW2901
            found.add(query)
    return found


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    required_tool("prometheus", "make prometheus-tools")
    home = Path(tmp_path_factory.mktemp("observed"))
    settings = load_settings({"REDLINE_HOME": str(home), "REDLINE_API_PORT": str(free_port())})
    supervisor = Supervisor(settings)
    running = supervisor.start()
    try:
        addresses = {service.name: service.address or "" for service, _ in supervisor.children}
        yield {"kafka": running.kafka_bootstrap or "", **addresses}
    finally:
        supervisor.stop()


def _query(client: httpx.Client, expr: str) -> list[Any]:
    response = client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    result: list[Any] = body["data"]["result"]
    return result


def _all_scraped(client: httpx.Client) -> bool:
    targets = client.get("/api/v1/targets").json()["data"]["activeTargets"]
    return bool(targets) and all(t["health"] == "up" for t in targets)


def test_every_panel_query_and_alert_expression_has_data(system: dict[str, str]) -> None:
    queries = panel_queries()
    assert len(queries) > 50
    with httpx.Client(base_url=system["prometheus"], timeout=10) as client:
        deadline = time.monotonic() + 240
        while not _all_scraped(client) and time.monotonic() < deadline:
            time.sleep(1)  # Prometheus scrapes every 15 s; ask again shortly
        # Then one undecodable message: every consumer of the violations dead-letters it,
        # so the dead-letter panels (which show only what increased) have data.
        producer = KafkaProducer(bootstrap_servers=system["kafka"], acks="all")
        producer.send(VIOLATIONS.name, b"{not json", key=b"observability").get(timeout=30)
        producer.close()
        waiting = set(queries)
        while waiting and time.monotonic() < deadline:
            waiting = {expr for expr in waiting if not _query(client, expr)}
            if waiting:
                time.sleep(2)  # Prometheus scrapes every 15 s; ask again shortly
        assert not waiting, f"{len(waiting)} panel queries without data: {sorted(waiting)}"
        targets = client.get("/api/v1/targets").json()["data"]["activeTargets"]
        down = [t["labels"].get("service") for t in targets if t["health"] != "up"]
        assert targets and not down, f"targets down: {down}"
        for expr in alert_expressions():
            _query(client, expr)  # parses and evaluates
            for name in set(METRIC.findall(expr)):
                assert _query(client, f"count({name})"), f"alert {expr!r}: no {name} series"
