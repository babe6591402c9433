"""Settings refuse half-configured servers; child processes end by pid and never linger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from events.authorities import NATURAL_RESOURCES
from events.signing import Signer
from services.bootstrap import load_signer
from services.config import load_running_settings, load_settings
from services.entrypoints import run
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
from tests.unit.builders import access_record


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
    record = access_record(
        "127.0.0.1:5", "/v1/checks?measure=refuse_loans&subject=91141181MA0XXXXX7Q"
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


# --- issue #18 item 12(b, d): no development keys and no password outside `make run` -----

EXTERNAL = {"KAFKA_BOOTSTRAP": "kafka.internal:9092", "DATABASE_URL": "postgresql://r:S3cret@db/r"}
KEY_SETTINGS = (
    "REDLINE_SIGNING_KEY and REDLINE_SIGNING_KEY_ID",
    "REDLINE_TRUST_STORE",
    "REDLINE_SUBJECT_KEY",
    "REDLINE_API_TOKENS",
)


def test_on_external_servers_no_development_key_stands_in(tmp_path: Path) -> None:
    """The attack: a production service started without its keys silently generated a
    development signing key and read the development trust store, subject key and tokens
    from REDLINE_HOME. Each now refuses, naming the setting to configure."""
    settings = load_settings({**EXTERNAL, "REDLINE_HOME": str(tmp_path)})
    assert not settings.dev_keys
    assert settings.missing_keys() == list(KEY_SETTINGS)
    for read, setting in (
        (lambda: settings.trust_store, "REDLINE_TRUST_STORE"),
        (lambda: settings.subject_key, "REDLINE_SUBJECT_KEY"),
        (lambda: settings.api_tokens, "REDLINE_API_TOKENS"),
        (lambda: load_signer(settings, NATURAL_RESOURCES), "REDLINE_SIGNING_KEY"),
    ):
        with pytest.raises(ConfigError, match=f"^{setting}.* is not set: on external servers"):
            read()
    assert not (tmp_path / "keys").exists()  # nothing was generated


def test_configured_keys_are_used_on_external_servers(tmp_path: Path) -> None:
    signer = Signer.generate("natural-resources-2026")
    (tmp_path / "bureau.pem").write_bytes(signer.private_pem())
    configured = {
        "REDLINE_SIGNING_KEY": str(tmp_path / "bureau.pem"),
        "REDLINE_SIGNING_KEY_ID": "natural-resources-2026",
        "REDLINE_TRUST_STORE": str(tmp_path / "trust.yaml"),
        "REDLINE_SUBJECT_KEY": str(tmp_path / "subject.key"),
        "REDLINE_API_TOKENS": str(tmp_path / "tokens.yaml"),
    }
    settings = load_settings({**EXTERNAL, **configured, "REDLINE_HOME": str(tmp_path)})
    assert settings.missing_keys() == []
    assert load_signer(settings, NATURAL_RESOURCES).key_id == "natural-resources-2026"
    assert settings.trust_store == tmp_path / "trust.yaml"


def test_development_keys_on_the_embedded_servers_or_when_asked(tmp_path: Path) -> None:
    embedded = load_settings({"REDLINE_HOME": str(tmp_path)})
    # make run names the embedded servers to its children by address: still development.
    running = embedded.with_endpoints("127.0.0.1:1", "postgresql://redline@127.0.0.1:2/r")
    asked = load_settings({**EXTERNAL, "REDLINE_HOME": str(tmp_path), "REDLINE_DEV_KEYS": "1"})
    for settings in (embedded, running, asked):
        assert settings.dev_keys and settings.missing_keys() == []
        assert settings.trust_store == tmp_path / "truststore.yaml"
        assert load_signer(settings, NATURAL_RESOURCES).key_id == "natural_resources-dev"
    with pytest.raises(ConfigError, match="REDLINE_DEV_KEYS must be on or off"):
        load_settings({"REDLINE_DEV_KEYS": "perhaps"})


def test_the_cli_uses_development_keys_only_if_the_running_system_does(tmp_path: Path) -> None:
    endpoints = {"kafka_bootstrap": "kafka:9092", "database_url": "postgresql://r@db/r"}
    (tmp_path / "endpoints.json").write_text(json.dumps({**endpoints, "dev_keys": False}))
    production = load_running_settings({"REDLINE_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="REDLINE_TRUST_STORE is not set"):
        assert production.trust_store is None  # raises first
    (tmp_path / "endpoints.json").write_text(json.dumps({**endpoints, "dev_keys": True}))
    assert load_running_settings({"REDLINE_HOME": str(tmp_path)}).dev_keys


def test_make_run_on_external_servers_refuses_to_start_without_keys(tmp_path: Path) -> None:
    """Through the real entry point: nothing is started, the missing settings are named
    and the database password is not printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDLINE_", "KAFKA_"))}
    env.pop("DATABASE_URL", None)
    env |= {**EXTERNAL, "REDLINE_HOME": str(tmp_path), "REDLINE_PROMETHEUS": "off"}
    ran = subprocess.run(
        [sys.executable, "-m", "services.entrypoints.run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1
    for setting in KEY_SETTINGS:
        assert setting in ran.stderr
    assert "S3cret" not in ran.stdout + ran.stderr
    assert not (tmp_path / "keys").exists()


def test_the_ready_line_shows_no_database_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings({**EXTERNAL, "REDLINE_HOME": str(tmp_path), "REDLINE_DEV_KEYS": "1"})

    class Started:
        broker = None

        def __init__(self, _: object) -> None:
            self.children: list[Any] = []

        def start(self) -> Any:
            return settings

        def watch(self) -> int:
            return 0

        def stop(self) -> None:
            pass

    monkeypatch.setattr(run, "Supervisor", Started)
    monkeypatch.setattr(signal, "signal", lambda *_: None)
    assert run.main() == 0
    printed = capsys.readouterr().out
    assert "database=postgresql://r:***@db/r" in printed
    assert "S3cret" not in printed


def test_settings_print_without_the_database_url(tmp_path: Path) -> None:
    """A Settings in a traceback or a debug line carries no password."""
    settings = load_settings({**EXTERNAL, "REDLINE_HOME": str(tmp_path)})
    assert "S3cret" not in repr(settings) and "S3cret" not in str(settings)
    assert settings.database_url == EXTERNAL["DATABASE_URL"]
