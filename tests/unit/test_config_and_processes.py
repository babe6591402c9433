"""Settings refuse half-configured servers; child processes end by pid and never linger."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import pytest

from services.config import load_running_settings, load_settings
from services.entrypoints.api import MaskSubjects
from services.errors import ConfigError, StartupError
from services.runtime.processes import (
    free_port,
    is_running,
    port_is_free,
    spawn,
    stop_process,
    wait_until,
)


def test_embedded_when_no_server_is_named(tmp_path: Path) -> None:
    settings = load_settings({"REDLINE_HOME": str(tmp_path)})
    assert settings.embedded
    with pytest.raises(ConfigError, match="make run"):
        settings.require()


def test_one_server_without_the_other_is_refused() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL must be set too"):
        load_settings({"KAFKA_BOOTSTRAP": "kafka:9092"})


def test_bad_replication_factor_is_named() -> None:
    with pytest.raises(ConfigError, match="REDLINE_KAFKA_REPLICATION"):
        load_settings({"REDLINE_KAFKA_REPLICATION": "zero"})


def test_demo_feed_switch() -> None:
    assert load_settings({}).demo is True
    assert load_settings({"REDLINE_DEMO": "0"}).demo is False
    assert load_settings({"REDLINE_DEMO": "off"}).demo is False
    with pytest.raises(ConfigError, match="REDLINE_DEMO must be on or off"):
        load_settings({"REDLINE_DEMO": "maybe"})


def test_cli_finds_the_running_embedded_system(tmp_path: Path) -> None:
    (tmp_path / "endpoints.json").write_text(
        '{"kafka_bootstrap": "127.0.0.1:1", "database_url": "postgresql://x@127.0.0.1:2/r"}'
    )
    settings = load_running_settings({"REDLINE_HOME": str(tmp_path)})
    assert settings.require() == ("127.0.0.1:1", "postgresql://x@127.0.0.1:2/r")


def test_a_child_is_stopped_by_pid_and_escalates_to_kill(tmp_path: Path) -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    proc = spawn([sys.executable, "-c", stubborn], log_path=tmp_path / "child.log")
    wait_until(lambda: "up" in (tmp_path / "child.log").read_text(), timeout=10, what="child")
    assert is_running(proc.pid)
    code = stop_process(proc, sig=signal.SIGTERM, timeout=0.5)
    assert code == -signal.SIGKILL
    assert not is_running(proc.pid)


def test_wait_until_names_what_never_became_ready() -> None:
    with pytest.raises(StartupError, match="the moon: not ready"):
        wait_until(lambda: False, timeout=0.05, what="the moon")


def test_the_api_access_log_masks_the_subject_of_a_check() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5",
            "GET",
            "/v1/checks?measure=refuse_loans&subject=91141181MA0XXXXX7Q",
            "1.1",
            200,
        ),
        None,
    )
    assert MaskSubjects().filter(record)
    line = record.getMessage()
    assert "91141181MA0XXXXX7Q" not in line
    assert "subject=9114************7Q" in line and "measure=refuse_loans" in line


def test_ports_for_servers_are_never_ones_outgoing_connections_take() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(50)}
    assert all(port < max(low, 20000) for port in ports)
    assert all(port_is_free(port) for port in ports)


def test_a_port_is_handed_out_once_though_nothing_has_bound_it_yet() -> None:
    """`make run` picks every child's port before the children bind them."""
    picks = [free_port() for _ in range(300)]
    assert len(set(picks)) == len(picks)
