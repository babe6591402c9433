"""`make run`'s supervisor: one ready line, then a clean stop on SIGTERM with no process left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.runtime.processes import is_running
from tests.conftest import Stack

# Longer than the suite's 30 s per test: starts make run's whole system and restarts a child.
pytestmark = pytest.mark.timeout(180)

READY_TIMEOUT = 60.0


def _start(home: Path, extra_env: dict[str, str]) -> subprocess.Popen[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KAFKA_BOOTSTRAP", "DATABASE_URL"}
    }
    env.update({"REDLINE_HOME": str(home), **extra_env})
    return subprocess.Popen(
        [sys.executable, "-m", "services.entrypoints.run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _read_until_ready(proc: subprocess.Popen[str]) -> list[str]:
    """Lines up to the ready line; fails if the process ends or the deadline passes first."""
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"supervisor ended before ready: {lines}")
        lines.append(line)
        if line.startswith("redline ready"):
            return lines
    raise AssertionError(f"no ready line within {READY_TIMEOUT}s: {lines}")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    return proc.returncode, output


def test_embedded_run_is_ready_then_stops_everything_it_started(tmp_path: Path) -> None:
    proc = _start(tmp_path, {})
    try:
        lines = _read_until_ready(proc)
        endpoints = json.loads((tmp_path / "endpoints.json").read_text())
        pids = endpoints["pids"]
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    assert "(embedded)" in lines[-1]
    assert f"kafka={endpoints['kafka_bootstrap']}" in lines[-1]
    assert {"broker", "postgres"} <= set(pids)
    assert all(is_running(pid) for pid in pids.values())

    code, output = _stop(proc)

    assert code == 0, output
    assert "redline: stopped" in output
    assert [name for name, pid in pids.items() if is_running(pid)] == []
    assert not (tmp_path / "endpoints.json").exists()


def test_named_servers_are_used_instead_of_embedded_ones(tmp_path: Path, stack: Stack) -> None:
    proc = _start(tmp_path, {"KAFKA_BOOTSTRAP": stack.kafka, "DATABASE_URL": stack.database_url})
    try:
        lines = _read_until_ready(proc)
        endpoints = json.loads((tmp_path / "endpoints.json").read_text())
    finally:
        code, output = _stop(proc)
    assert "(external)" in lines[-1]
    assert endpoints["kafka_bootstrap"] == stack.kafka
    assert "broker" not in endpoints["pids"] and "postgres" not in endpoints["pids"]
    assert not (tmp_path / "broker").exists()
    assert code == 0, output


def test_a_child_that_dies_is_started_again(tmp_path: Path, stack: Stack) -> None:
    proc = _start(
        tmp_path,
        {
            "KAFKA_BOOTSTRAP": stack.kafka,
            "DATABASE_URL": stack.database_url,
            "REDLINE_DEMO": "0",
            "REDLINE_PROMETHEUS": "off",
        },
    )
    try:
        _read_until_ready(proc)
        endpoints_file = tmp_path / "endpoints.json"
        first = json.loads(endpoints_file.read_text())["pids"]["system-host"]
        os.kill(first, signal.SIGKILL)  # a crash of a process this test's supervisor started

        deadline = time.monotonic() + 30
        again = first
        while again == first and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the endpoints file for the new pid, bounded above
            again = json.loads(endpoints_file.read_text())["pids"]["system-host"]
        assert again != first, "the system host was not started again within 30 s"
        assert is_running(again)
        assert proc.poll() is None, "the supervisor itself must carry on"
    finally:
        code, output = _stop(proc)
    assert code == 0, output
    assert "system-host exited with -9; starting it again" in output
    assert not is_running(again)
