"""#18 item 6, attacked on a real PostgreSQL: every service and department connects as its
own role, which reaches only its own tables; the audit log takes no UPDATE, DELETE or
TRUNCATE from any of them, even through a mistaken grant; a role cannot do another's job."""

from __future__ import annotations

import asyncpg
import pytest

from events.models import CaseDetails
from services.adapters.db_roles import apply_roles, prepare_database
from services.adapters.department_store import department_schema
from services.adapters.migrate import migrate
from services.bootstrap import bootstrap_registry
from services.config import Settings
from services.errors import DatabaseError
from tests.conftest import CODES, Stack, as_role, create_database, dev_passwords
from tests.support import case_body

Roles = dict[str, str]
DENIED = asyncpg.InsufficientPrivilegeError


@pytest.fixture
async def roles(stack: Stack) -> Roles:
    """A database of this test's own, migrated and given its roles as `make run` does;
    the migrator's URL under "migrator"."""
    url = await create_database(stack, migrated=False)
    return {"migrator": url, **await prepare_database(url, CODES, dev_passwords(stack.home))}


async def _as(roles: Roles, role: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(roles[role])
    assert await conn.fetchval("SELECT current_user") == role
    return conn


async def _denied(conn: asyncpg.Connection, sql: str) -> str:
    with pytest.raises(DENIED) as refused:
        await conn.execute(sql)
    return str(refused.value)


async def test_a_department_reaches_its_own_schema_only(roles: Roles) -> None:
    banks = await _as(roles, "redline_dept_banks")
    try:
        own = department_schema("banks")
        assert await banks.fetchval(f"SELECT count(*) FROM {own}.blocks") == 0
        other = department_schema("water_supply")
        assert "permission denied for schema" in await _denied(
            banks, f"SELECT * FROM {other}.blocks"
        )
        await _denied(banks, f"UPDATE {other}.blocks SET lifted_at = now()")
        await _denied(banks, f"DELETE FROM {other}.consumed_events")
        for registry_table in ("cases", "outbox", "audit_log", "case_records"):
            await _denied(banks, f"SELECT * FROM public.{registry_table}")
        await _denied(banks, "UPDATE public.cases SET status = 'revoked'")
        await _denied(banks, "SELECT * FROM blocklist.blocks")
        await _denied(banks, "SELECT * FROM feedback.outbox")
        # It creates nothing, anywhere: no table in its own schema, no role, no database.
        await _denied(banks, f"CREATE TABLE {own}.smuggled (x int)")
        await _denied(banks, "CREATE TABLE public.smuggled (x int)")
        await _denied(banks, "CREATE ROLE smuggler LOGIN")
        await _denied(banks, "CREATE TEMP TABLE smuggled (x int)")
        # Its own audit trail: appended to and read, never rewritten.
        await _denied(banks, f"UPDATE {own}.audit_log SET reason = 'x'")
        await _denied(banks, f"DELETE FROM {own}.audit_log")
        await _denied(banks, f"TRUNCATE {own}.audit_log")
        assert not await banks.fetchval(
            "SELECT rolsuper FROM pg_roles WHERE rolname = $1", "redline_dept_banks"
        )
    finally:
        await banks.close()


async def test_the_registry_cannot_rewrite_the_audit_log_even_through_a_mistaken_grant(
    stack: Stack, settings: Settings, roles: Roles
) -> None:
    registry_settings = as_role(settings, roles["redline_registry"])
    async with bootstrap_registry(registry_settings) as registry:  # files as its own role
        await registry.file_case(CaseDetails.model_validate(case_body(("cultivated", "2"))))
    conn = await _as(roles, "redline_registry")
    migrator = await asyncpg.connect(roles["migrator"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM audit_log") >= 1
        for attack in (
            "UPDATE audit_log SET reason = 'nothing happened'",
            "DELETE FROM audit_log WHERE seq = 1",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_append_only",
            "DROP TRIGGER audit_append_only ON audit_log",
        ):
            await _denied(conn, attack)
        # A grant mistake by the migrator: the trigger still refuses every rewrite.
        await migrator.execute(
            "GRANT UPDATE, DELETE, TRUNCATE ON audit_log TO redline_registry_access"
        )
        for attack in (
            "UPDATE audit_log SET reason = 'nothing happened'",
            "DELETE FROM audit_log WHERE seq = 1",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(attack)
        # The next start's role step takes the mistaken grant back.
        await apply_roles(roles["migrator"], CODES, dev_passwords(stack.home))
        await _denied(conn, "DELETE FROM audit_log WHERE seq = 1")
    finally:
        await conn.close()
        await migrator.close()


async def test_a_role_cannot_do_another_services_job(settings: Settings, roles: Roles) -> None:
    builder = await _as(roles, "redline_blocklist")
    relay = await _as(roles, "redline_relay")
    anchor = await _as(roles, "redline_audit_anchor")
    tracker = await _as(roles, "redline_feedback")
    try:
        forged = (
            "INSERT INTO public.outbox (event_id, event_type, topic, key, value) "
            "VALUES ('forged', 'redline.case.revoked.v1', 'redline.violations.v1', 'k', '\\x00')"
        )
        await _denied(builder, forged)  # the builder cannot publish as the registry
        await _denied(relay, forged)  # the relay only marks what the registry wrote as sent
        assert await relay.fetchval("SELECT count(*) FROM public.outbox") == 0
        await relay.execute("UPDATE public.outbox SET sent_at = now() WHERE false")
        await _denied(relay, "SELECT * FROM public.cases")
        await _denied(tracker, "INSERT INTO blocklist.consumed_events VALUES ('e', 't')")
        await _denied(tracker, "UPDATE public.cases SET status = 'closed'")
        await _denied(builder, "UPDATE public.responses SET done_at = now()")
        assert await anchor.fetchval("SELECT count(*) FROM public.audit_log") == 0
        await _denied(anchor, "SELECT * FROM public.cases")
        await _denied(anchor, "INSERT INTO public.audit_log SELECT * FROM public.audit_log")
    finally:
        for conn in (builder, relay, anchor, tracker):
            await conn.close()
    # The real registry code given the builder's role files nothing: the registry's schema
    # is not even visible to it.
    with pytest.raises(DatabaseError, match='"case_number_seq" does not exist'):
        async with bootstrap_registry(as_role(settings, roles["redline_blocklist"])) as registry:
            await registry.file_case(CaseDetails.model_validate(case_body(("cultivated", "2"))))


async def test_tables_later_migrations_add_are_covered_without_editing_the_roles(
    stack: Stack, roles: Roles
) -> None:
    migrator = await asyncpg.connect(roles["migrator"])
    registry = await _as(roles, "redline_registry")
    banks = await _as(roles, "redline_dept_banks")
    try:
        # Created after the roles were applied: the default privileges cover it at once.
        await migrator.execute("CREATE TABLE public.later (id int PRIMARY KEY)")
        await registry.execute("INSERT INTO public.later VALUES (1)")
        await _denied(banks, "SELECT * FROM public.later")
        # And the role step at the next start, from the catalog, the same.
        await apply_roles(roles["migrator"], CODES, dev_passwords(stack.home))
        await registry.execute("INSERT INTO public.later VALUES (2)")
        await _denied(registry, "DELETE FROM public.later")
    finally:
        for conn in (migrator, registry, banks):
            await conn.close()


async def test_a_service_migrates_nothing_itself(roles: Roles) -> None:
    schema = department_schema("banks")
    package = "services.departments.migrations"
    # Up to date: its start-up migration finds nothing to do and needs no privilege.
    assert await migrate(roles["redline_dept_banks"], package=package, schema=schema) == []
    migrator = await asyncpg.connect(roles["migrator"])
    try:
        await migrator.execute(f"DELETE FROM {schema}.schema_migrations WHERE version = 5")
    finally:
        await migrator.close()
    with pytest.raises(DatabaseError, match="the migrator applies them"):
        await migrate(roles["redline_dept_banks"], package=package, schema=schema)
