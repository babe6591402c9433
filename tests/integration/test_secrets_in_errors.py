"""Issue #18 item 12(b): an error naming the database never shows its password.

The fault is real: a DATABASE_URL with a password that the real PostgreSQL refuses (no
such database), through `migrate` and through `make run`'s own entry point.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.adapters.migrate import migrate
from services.errors import DatabaseError
from tests.conftest import Stack
from tests.support import run_python

PASSWORD = "Tr0ub4dor-S3cret"


def _with_password(stack: Stack, database: str) -> str:
    """The session's server, logged in with a password, asking for `database`."""
    head, _, _ = stack.database_url.rpartition("/")  # postgresql://redline@127.0.0.1:port
    scheme, _, rest = head.partition("://")
    user, _, host = rest.partition("@")
    return f"{scheme}://{user}:{PASSWORD}@{host}/{database}"


async def test_a_refused_migration_names_the_server_without_the_password(stack: Stack) -> None:
    url = _with_password(stack, "no_such_database")
    with pytest.raises(DatabaseError) as refused:
        await migrate(url)
    message = str(refused.value)
    assert PASSWORD not in message
    assert ":***@127.0.0.1:" in message and "no_such_database" in message


@pytest.mark.parametrize("password", ["p/w0rd", "p?w0rd", "p#w0rd"])
async def test_a_url_asyncpg_cannot_parse_shows_no_piece_of_the_password(password: str) -> None:
    """asyncpg's own parse error quotes the piece of a password before an unencoded /."""
    with pytest.raises(DatabaseError) as refused:
        await migrate(f"postgresql://redline:{password}@127.0.0.1:1/redline")
    message = str(refused.value) + repr(refused.value.__cause__)
    assert "p/" not in message and "w0rd" not in message and "'p'" not in message
    assert "DATABASE_URL is not a usable database URL" in message


def test_make_run_prints_a_failed_migration_without_the_password(
    stack: Stack, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": stack.kafka,
        "DATABASE_URL": _with_password(stack, "no_such_database"),
        "REDLINE_HOME": str(tmp_path),
        "REDLINE_DEV_KEYS": "1",
        "REDLINE_PROMETHEUS": "off",
    }
    ran = run_python("-m", "services.entrypoints.run", env=env, timeout=120)
    assert ran.returncode == 1, ran.stderr
    assert "redline: cannot connect to postgresql://redline:***@127.0.0.1:" in ran.stderr
    assert PASSWORD not in ran.stdout + ran.stderr
