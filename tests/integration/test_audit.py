"""The audit trail on a real PostgreSQL: written with every state change, append-only, and
`redline audit verify` names an edited or deleted entry."""

from __future__ import annotations

import subprocess

import asyncpg
import pytest

from events.models import CaseDetails
from services.bootstrap import bootstrap_registry
from services.config import Settings
from services.entrypoints.audit_commands import verify_trails
from tests.support import case_body, run_python, service_env


async def test_every_filing_is_audited_and_tampering_is_found(own_database: Settings) -> None:
    _, database = own_database.require()
    async with bootstrap_registry(own_database) as registry:
        first = await registry.file_case(CaseDetails.model_validate(case_body(("cultivated", "2"))))
        second = await registry.file_case(
            CaseDetails.model_validate(case_body(("permanent_basic_farmland", "6")))
        )
    # + accountability, and the referrals it sends (criminal, discipline, the city's report)
    assert await verify_trails(database, "public") == {"public": (6, [])}

    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT seq, actor, action, case_id, legal_basis FROM audit_log")
        assert [(r["action"], r["case_id"]) for r in rows] == [
            ("filing", first.case_id),
            ("filing", second.case_id),
            ("accountability", second.case_id),
            *[("referral_sent", second.case_id)] * 3,
        ]
        assert "5" in rows[2]["legal_basis"]  # the seed's threshold rule, as applied
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("UPDATE audit_log SET reason = 'x' WHERE seq = 1")
        # Someone with the power to switch the guard off edits and deletes anyway:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_append_only")
        await conn.execute("UPDATE audit_log SET case_id = 'RL-0000-000000' WHERE seq = 1")
        await conn.execute("DELETE FROM audit_log WHERE seq = 2")
    finally:
        await conn.close()

    _, problems = (await verify_trails(database, "public"))["public"]
    assert problems == [
        "entry 1 was changed after it was written",
        "entries 2..2 are missing (deleted)",
        "entry 3 does not follow the entry before it",
    ]


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    cli = ("-m", "services.entrypoints.cli")
    return run_python(*cli, "audit", "verify", *args, env=service_env(settings))


def test_the_cli_verifies_and_refuses_an_unknown_schema(own_database: Settings) -> None:
    intact = _cli(own_database, "--schema", "public")
    assert intact.returncode == 0 and "public: 0 entries, intact" in intact.stdout
    unknown = _cli(own_database, "--schema", "dept_nowhere")
    assert (
        unknown.returncode == 2 and "--schema: no audit trail in 'dept_nowhere'" in unknown.stderr
    )
