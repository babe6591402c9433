"""#18 item 6: the audit chain's head is anchored outside the database. Someone holding the
migrator's power deletes (or rewrites) the tail; the chain alone cannot tell, the signed
checkpoint on the broker can, and `redline audit verify` names the missing entries."""

from __future__ import annotations

import asyncio
import subprocess

import asyncpg
import pytest

from events.models import CaseDetails
from events.signing import TrustStore
from services.adapters.audit_anchor import read_checkpoint_values
from services.adapters.db_roles import prepare_database
from services.adapters.postgres import create_pool
from services.audit.anchor import latest_checkpoints
from services.bootstrap import bootstrap_registry
from services.config import Settings
from services.entrypoints.audit_anchor import AuditAnchor, run_anchor
from services.entrypoints.audit_commands import verify_trails
from tests.conftest import CODES, Stack, as_role, create_database, dev_passwords
from tests.support import case_body, eventually, run_python, service_env


@pytest.fixture
async def roles(stack: Stack, trust: TrustStore) -> dict[str, str]:
    url = await create_database(stack, migrated=False)
    return {"migrator": url, **await prepare_database(url, CODES, dev_passwords(stack.home))}


async def _file(settings: Settings, roles: dict[str, str], count: int) -> None:
    async with bootstrap_registry(as_role(settings, roles["redline_registry"])) as registry:
        for _ in range(count):
            await registry.file_case(CaseDetails.model_validate(case_body(("cultivated", "2"))))


def _verify(settings: Settings, database_url: str) -> subprocess.CompletedProcess[str]:
    verify = ("-m", "services.entrypoints.cli", "audit", "verify", "--schema", "public")
    env = service_env(settings, DATABASE_URL=database_url)
    return run_python(*verify, env=env, timeout=120)


async def test_a_deleted_tail_is_named_thanks_to_the_anchored_checkpoint(
    settings: Settings, roles: dict[str, str]
) -> None:
    await _file(settings, roles, 3)
    anchor_settings = as_role(settings, roles["redline_audit_anchor"])
    pool = await create_pool(roles["redline_audit_anchor"], max_size=1)
    try:
        anchor = AuditAnchor(anchor_settings, pool)
        await anchor.load()
        published = await anchor.once(force=True)
        head = {c.schema: c.seq for c in published}["public"]
        assert head >= 3
        intact = _verify(settings, roles["migrator"])
        assert intact.returncode == 0, intact.stdout + intact.stderr
        assert f"intact (anchored at entry {head})" in intact.stdout

        # The migrator (a superuser here) switches the guard off and deletes the tail.
        migrator = await asyncpg.connect(roles["migrator"])
        try:
            await migrator.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_append_only")
            await migrator.execute("DELETE FROM audit_log WHERE seq >= 2")
            await migrator.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_append_only")
        finally:
            await migrator.close()
        # What is left is a whole chain: without the anchor nothing looks wrong.
        assert await verify_trails(roles["migrator"], "public") == {"public": (1, [])}

        broken = _verify(settings, roles["migrator"])
        assert broken.returncode == 1, broken.stdout + broken.stderr
        assert "public: 1 entries, BROKEN" in broken.stdout
        assert f"entries 2..{head} are missing (truncated tail)" in broken.stdout

        # Nor will the anchor sign the shortened chain as the new head.
        assert await anchor.once(force=True) == []
        assert any("not signing a shorter head" in r for r in anchor.refusals)
    finally:
        await pool.close()


async def test_a_rewritten_tail_disagrees_with_the_anchored_head(
    settings: Settings, roles: dict[str, str]
) -> None:
    await _file(settings, roles, 2)
    pool = await create_pool(roles["redline_audit_anchor"], max_size=1)
    try:
        anchor = AuditAnchor(as_role(settings, roles["redline_audit_anchor"]), pool)
        await anchor.load()
        head = {c.schema: c for c in await anchor.once(force=True)}["public"]
    finally:
        await pool.close()
    migrator = await asyncpg.connect(roles["migrator"])
    try:
        # Rewrite the last entry and recompute its hash: the chain itself stays whole.
        await migrator.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_append_only")
        await migrator.execute(f"DELETE FROM audit_log WHERE seq = {head.seq}")
        await migrator.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_append_only")
    finally:
        await migrator.close()
    async with bootstrap_registry(as_role(settings, roles["redline_registry"])) as registry:
        # the registry appends a new entry at the same place, with a valid hash
        await registry.file_case(CaseDetails.model_validate(case_body(("cultivated", "3"))))
    assert (await verify_trails(roles["migrator"], "public"))["public"][1] == []
    broken = _verify(settings, roles["migrator"])
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"entry {head.seq} disagrees with the anchored head" in broken.stdout


async def test_the_anchor_process_publishes_heads_as_they_move(
    settings: Settings, roles: dict[str, str], trust: TrustStore
) -> None:
    await _file(settings, roles, 1)
    anchor_settings = as_role(settings, roles["redline_audit_anchor"])
    stop = asyncio.Event()
    running = asyncio.create_task(run_anchor(anchor_settings, stop, poll=0.05))
    conn = await asyncpg.connect(roles["migrator"])
    try:
        database = await conn.fetchval("SELECT current_database()")
        count = await conn.fetchval("SELECT count(*) FROM audit_log")
    finally:
        await conn.close()

    async def anchored() -> bool:
        values = await read_checkpoint_values(settings.kafka_bootstrap or "")
        heads, _ = latest_checkpoints(values, trust, database)
        return "public" in heads and heads["public"].seq == count

    try:
        await eventually(anchored, timeout=60, what="the first head anchored")
    finally:
        stop.set()
        await running
