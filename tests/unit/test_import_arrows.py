"""Arrows point down: pure rules and the deploy model import no adapter, no entry point
and not the token store's module; the services take the backoff from events/, never from
the connector distribution."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services import access, principals
from services.config import REPO_ROOT


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


BELOW_ADAPTERS = (
    "services.adapters",
    "services.entrypoints",
    "services.access",
    "asyncpg",
    "aiokafka",
    "faust",
)


@pytest.mark.parametrize(
    "module",
    [
        "services/registry/domain.py",
        "services/principals.py",
        "services/departments/schema.py",
        "deploy/model.py",
        "events/backoff.py",
    ],
)
def test_pure_modules_import_no_adapter(module: str) -> None:
    wrong = {
        name for name in imported_modules(REPO_ROOT / module) if name.startswith(BELOW_ADAPTERS)
    }
    assert not wrong, f"{module} imports {sorted(wrong)}"


def test_no_service_imports_the_connectors_backoff() -> None:
    wrong = [
        str(path.relative_to(REPO_ROOT))
        for path in sorted((REPO_ROOT / "services").rglob("*.py"))
        if "connectors.subscriber.backoff" in imported_modules(path)
    ]
    assert not wrong


def test_the_access_module_still_offers_role_and_principal() -> None:
    assert (access.Role, access.Principal) == (principals.Role, principals.Principal)
