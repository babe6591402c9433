"""`redline-connector`: exit codes of check/export/status and options refused by name."""

from __future__ import annotations

import csv
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from connectors.subscriber.access import TokenSet, ensure_dev_tokens
from connectors.subscriber.cli import app
from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.errors import ConfigError
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import Deployment, record
from tests.support import new_uscc
from tests.unit.builders import POWER, PREMISES, SUBSCRIBER, UNIT

runner = CliRunner()


def _replica(deployment: Deployment, blocked: str, *, vouched_at: float) -> Path:
    config = deployment.config(SUBSCRIBER, (POWER,))
    subscriber = Subscriber(config)
    key, value, _ = deployment.factory.entry(POWER, blocked, sites=(PREMISES,))
    moment = datetime.fromtimestamp(vouched_at, UTC)
    subscriber.apply_records(
        [
            record(POWER, deployment.factory.partition(POWER, blocked), 0, key, value),
            *(
                record(POWER, p, 1, *deployment.factory.heartbeat(POWER, p, moment))
                for p in range(3)
            ),
        ]
    )
    subscriber.stop()
    return config.replica


def _args(deployment: Deployment, replica: Path, *more: str) -> list[str]:
    return [*more, "--replica", str(replica), "--subject-key", str(deployment.subject_key)]


def _check(deployment: Deployment, replica: Path, subject: str, *site: str) -> Result:
    return runner.invoke(
        app,
        _args(deployment, replica, "check", "--measure", POWER, "--subject", subject, *site),
    )


def test_check_exit_codes(deployment: Deployment) -> None:
    blocked = new_uscc()
    replica = _replica(deployment, blocked, vouched_at=time.time())

    clear = _check(deployment, replica, new_uscc(), "--site", UNIT)
    assert clear.exit_code == 0, clear.output
    assert json.loads(clear.stdout)["status"] == "clear"

    hit = _check(deployment, replica, blocked, "--site", UNIT)
    assert hit.exit_code == 1
    assert json.loads(hit.stdout)["cases"][0]["case_id"] == "case-1"

    elsewhere = _check(deployment, replica, blocked, "--site", "孝义市梧桐镇西村12号")
    assert elsewhere.exit_code == 0, elsewhere.output
    assert json.loads(elsewhere.stdout) == {
        "status": "clear",
        "measure": POWER,
        "blocked_elsewhere": True,
    }

    no_site = _check(deployment, replica, blocked)
    assert no_site.exit_code == 2
    assert "--site: required for refuse_power_supply" in no_site.output

    bad = _check(deployment, replica, blocked[:-1], "--site", UNIT)
    assert bad.exit_code == 2
    assert "--subject" in bad.output and "18 characters" in bad.output

    unserved = runner.invoke(
        app,
        _args(deployment, replica, "check", "--measure", "refuse_loans", "--subject", blocked),
    )
    assert unserved.exit_code == 2
    assert "--measure" in unserved.output


def test_check_is_stale_with_exit_code_3_past_the_bound(deployment: Deployment) -> None:
    replica = _replica(deployment, new_uscc(), vouched_at=time.time() - 60)
    result = _check(deployment, replica, new_uscc(), "--site", UNIT)
    assert result.exit_code == 3
    assert json.loads(result.stdout)["status"] == "stale"
    fresh_enough = runner.invoke(
        app,
        _args(
            deployment,
            replica,
            "check",
            "--measure",
            POWER,
            "--subject",
            new_uscc(),
            "--site",
            UNIT,
            "--freshness-bound",
            "120",
        ),
    )
    assert fresh_enough.exit_code == 0


def test_export_writes_the_csv_and_status_prints_health(
    deployment: Deployment, tmp_path: Path
) -> None:
    blocked = new_uscc()
    replica = _replica(deployment, blocked, vouched_at=time.time())
    out = tmp_path / "power.csv"
    exported = runner.invoke(
        app, _args(deployment, replica, "export", "--measure", POWER, "--out", str(out))
    )
    assert exported.exit_code == 0, exported.output
    rows = list(csv.DictReader(out.read_text(encoding="utf-8").splitlines()))
    assert [r["subject_hash"] for r in rows] == [deployment.factory.subject_hash(blocked, POWER)]
    assert rows[0]["target"] == "site"
    assert rows[0]["site_hashes"] == ",".join(deployment.factory.site_hashes(PREMISES, POWER))

    status = runner.invoke(app, _args(deployment, replica, "status"))
    assert status.exit_code == 0, status.output
    health = json.loads(status.stdout)
    assert health["status"] == "fresh"
    assert health["measures"][POWER]["entries"] == 1


def test_a_missing_replica_is_refused_naming_the_option(
    deployment: Deployment, tmp_path: Path
) -> None:
    result = runner.invoke(app, _args(deployment, tmp_path / "none.sqlite3", "status"))
    assert result.exit_code == 2
    assert "--replica" in result.output


def _run(deployment: Deployment, tmp_path: Path, change: dict[str, str | None]) -> Result:
    """`redline-connector run` with options that would start it, as `change` changes them:
    a flag's value is "" (given alone); None leaves an option out."""
    options: dict[str, str | None] = {
        "--name": SUBSCRIBER,
        "--measures": POWER,
        "--bootstrap": "127.0.0.1:9",
        "--replica": str(tmp_path / "replica.sqlite3"),
        "--trust-store": str(deployment.trust_store),
        "--subject-key": str(deployment.subject_key),
        "--port": "0",
        "--no-auth": "",
    }
    options.update(change)
    argv = [x for option, value in options.items() if value is not None for x in (option, value)]
    return runner.invoke(app, ["run", *(x for x in argv if x)])


@pytest.mark.parametrize(
    ("change", "option", "reason"),
    [
        ({"--measures": "refuse_water"}, "--measures", "unknown measure 'refuse_water'"),
        ({"--measures": ","}, "--measures", "at least one"),
        ({"--name": "Power Co"}, "--name", "authority code"),
        ({"--freshness-bound": "0"}, "--freshness-bound", "between 0 and 86400"),
        ({"--webhook-url": "ftp://x"}, "--webhook-url", "http(s) URL"),
        ({"--signing-key-id": "k1"}, "--signing-key", "give both"),
        ({"--kafka-api-version": "two"}, "--kafka-api-version", "not a version"),
        ({"--trust-store": "/nonexistent/trust.yaml"}, "--trust-store", "cannot read"),
        ({"--log-level": "chatty"}, "--log-level", "unknown level"),
        # The check API: tokens, or --no-auth on loopback only; TLS files go in pairs.
        ({"--no-auth": None}, "--api-tokens", "required"),
        ({"--host": "0.0.0.0"}, "--no-auth", "only on a loopback host"),
        ({"--api-tokens": "/nonexistent/tokens.yaml"}, "--no-auth", "not both"),
        ({"--check-rate": "0"}, "--check-rate", "> 0"),
        ({"--tls-cert": "/nonexistent/c.pem"}, "--tls-key", "give both"),
    ],
)
def test_run_refuses_a_bad_option_naming_it_and_why(
    deployment: Deployment,
    tmp_path: Path,
    change: dict[str, str | None],
    option: str,
    reason: str,
) -> None:
    result = _run(deployment, tmp_path, change)
    assert result.exit_code == 2
    assert f"{option}: " in result.output and reason in result.output


def test_config_names_the_field_it_refuses(deployment: Deployment, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        SubscriberConfig(
            name=SUBSCRIBER,
            measures=(POWER, "refuse_everything"),
            bootstrap="127.0.0.1:9",
            replica=tmp_path / "r.sqlite3",
            trust_store=deployment.trust_store,
            subject_key=deployment.subject_key,
        )
    assert refused.value.field == "measures"
    assert "refuse_everything" in refused.value.reason


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tokens: []\n", "lists no token"),
        ("- name: a\n", "a 'tokens' list"),
        ("tokens:\n- name: a\n  sha256: abc\n", "sha256: must be 64 hex digits"),
        (f"tokens:\n- sha256: {'a' * 64}\n", "name: required"),
        (
            f"tokens:\n- name: a\n  sha256: {'a' * 64}\n  role: subscriber\n",
            "unknown field(s) role",
        ),
        (
            f"tokens:\n- name: a\n  sha256: {'a' * 64}\n- name: b\n  sha256: {'A' * 64}\n",
            "repeated",
        ),
    ],
)
def test_run_refuses_a_bad_tokens_file_naming_what_is_wrong(
    deployment: Deployment, tmp_path: Path, text: str, reason: str
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(text)
    result = _run(deployment, tmp_path, {"--api-tokens": str(tokens), "--no-auth": None})
    assert result.exit_code == 2
    assert "--api-tokens: " in result.output and reason in result.output


def test_the_dev_tokens_file_lets_its_token_in(tmp_path: Path) -> None:
    path = ensure_dev_tokens(tmp_path / "subscribers")
    token = (tmp_path / "subscribers" / "api.token").read_text().strip()
    assert token not in path.read_text()  # only its hash is kept
    tokens = TokenSet.load(path)
    assert tokens.who(token) == "demo"
    assert tokens.who(token + "x") is None
    assert ensure_dev_tokens(tmp_path / "subscribers") == path  # the same token next run
    assert TokenSet.load(path).who(token) == "demo"
