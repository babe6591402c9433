"""Prometheus itself checks the config, the alert rules (and their unit tests), and every
dashboard query. `make prometheus-tools` installs promtool: on the PATH where make runs as
root (CI), else into the virtualenv (no sudo). Without it these checks fail, naming it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.dashboards import panel_queries
from services.config import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
DASHBOARDS_DIR = REPO_ROOT / "deploy" / "grafana" / "dashboards"
COMPOSE_TARGETS = REPO_ROOT / "deploy" / "compose" / "prometheus" / "targets.json"

# Grafana's variables, replaced by what Grafana would send, so promtool sees plain PromQL.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "6h",
    "$subscriber": "(power_supply_demo_subscriber|banks_demo_subscriber)",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool") or shutil.which("promtool", path=Path(sys.executable).parent)
    assert path is not None, "promtool is not installed: run `make prometheus-tools`"
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_alert_rules_pass(promtool: str) -> None:
    output = assert_ok(run(promtool, "check", "rules", str(PROMETHEUS_DIR / "alerts.yml")))
    assert "SUCCESS" in output


def test_config_passes(promtool: str) -> None:
    assert_ok(run(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")))


def _prometheus_dir(tmp_path: Path, targets: list[dict[str, object]]) -> Path:
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROMETHEUS_DIR / name, tmp_path / name)
    (tmp_path / "targets.json").write_text(json.dumps(targets), encoding="utf-8")
    return tmp_path / "prometheus.yml"


def test_config_reads_the_compose_targets(promtool: str, tmp_path: Path) -> None:
    targets = json.loads(COMPOSE_TARGETS.read_text(encoding="utf-8"))
    config = _prometheus_dir(tmp_path, targets)
    output = assert_ok(run(promtool, "check", "config", str(config)))
    assert "WARNING" not in output


def test_config_reads_targets_written_as_make_run_does(promtool: str, tmp_path: Path) -> None:
    targets: list[dict[str, object]] = [
        {"targets": ["127.0.0.1:40123"], "labels": {"service": "relay"}},
        {"targets": ["127.0.0.1:8000"], "labels": {"service": "registry-api"}},
        {"targets": ["127.0.0.1:40124"], "labels": {"service": "department-finance"}},
    ]
    config = _prometheus_dir(tmp_path, targets)
    output = assert_ok(run(promtool, "check", "config", str(config)))
    assert "WARNING" not in output


def test_alerts_fire_as_their_unit_tests_expect(promtool: str) -> None:
    output = assert_ok(run(promtool, "test", "rules", "alerts_test.yml", cwd=PROMETHEUS_DIR))
    assert "SUCCESS" in output


def grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    leftover = re.findall(r"\$\{?[a-zA-Z_]\w*", expr)
    assert not leftover, f"unknown Grafana variable {leftover} in {expr}"
    return expr


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    rules: list[dict[str, str]] = []
    for path in sorted(DASHBOARDS_DIR.rglob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for expr in panel_queries(board):
            rules.append(
                {"record": f"dashboard:query_{len(rules)}", "expr": grafana_to_promql(expr)}
            )
    assert len(rules) > 100
    file = tmp_path / "dashboard_queries.yml"
    file.write_text(
        yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8"
    )
    result = run(promtool, "check", "rules", str(file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_query(promtool: str, tmp_path: Path) -> None:
    """The check above would catch a bad query: promtool does refuse one."""
    file = tmp_path / "broken.yml"
    rule = {"record": "dashboard:broken", "expr": "sum by (x (rate(up[1m]))"}
    file.write_text(yaml.safe_dump({"groups": [{"name": "b", "rules": [rule]}]}))
    assert run(promtool, "check", "rules", str(file)).returncode != 0
