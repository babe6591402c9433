"""The role table (#18 item 6), pure: who holds what on which table, the caps that keep the
audit log append-only whatever a rule says, and where passwords come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.adapters.db_roles import (
    load_passwords,
    plan_grants,
    role_passwords,
    role_spec,
    role_url,
    table_privileges,
)
from services.config import load_settings
from services.errors import ConfigError

CODES = ["banks", "water_supply"]


def test_the_audit_log_is_append_only_and_bookkeeping_read_only_for_every_group() -> None:
    groups, _ = role_spec(CODES)
    for group in groups:
        for schema in ("public", "dept_banks", "dept_water_supply"):
            held = table_privileges(group, schema, "audit_log")
            assert set(held) <= {"SELECT", "INSERT"}, group.name
            assert set(table_privileges(group, schema, "schema_migrations")) <= {"SELECT"}


def test_each_group_holds_its_own_tables_and_new_ones_of_its_schema() -> None:
    groups, logins = role_spec(CODES)
    by_name = {g.name: g for g in groups}
    registry = by_name["redline_registry_access"]
    assert table_privileges(registry, "public", "cases") == ("SELECT", "INSERT", "UPDATE")
    assert table_privileges(registry, "public", "a_table_added_later") == (
        "SELECT",
        "INSERT",
        "UPDATE",
    )
    assert table_privileges(registry, "public", "responses") == ("SELECT",)
    assert table_privileges(registry, "public", "outbox") == ("SELECT", "INSERT")
    assert table_privileges(registry, "dept_banks", "blocks") == ()
    banks = by_name["redline_dept_banks_access"]
    assert table_privileges(banks, "dept_banks", "blocks") == ("SELECT", "INSERT", "UPDATE")
    assert table_privileges(banks, "dept_water_supply", "blocks") == ()
    assert table_privileges(banks, "public", "cases") == ()
    relay = by_name["redline_relay_access"]
    assert table_privileges(relay, "public", "outbox") == ("SELECT", "UPDATE")
    assert {login.name for login in logins} >= {
        "redline_registry",
        "redline_relay",
        "redline_feedback",
        "redline_blocklist",
        "redline_reports",
        "redline_dept_banks",
    }


def test_the_plan_grants_no_create_and_takes_connect_from_public() -> None:
    groups, logins = role_spec(CODES)
    tables = {"public": ["cases", "audit_log"], "dept_banks": ["blocks", "audit_log"]}
    plan = plan_grants("redline", groups, logins, tables, {"public": ["case_number_seq"]})
    assert 'REVOKE ALL ON DATABASE "redline" FROM PUBLIC' in plan
    assert "REVOKE ALL ON SCHEMA public FROM PUBLIC" in plan
    assert not [s for s in plan if s.startswith("GRANT") and "CREATE" in s]
    grants = [s for s in plan if s.startswith("GRANT") and "audit_log" in s]
    assert grants and all("UPDATE" not in s and "DELETE" not in s for s in grants)
    # a department not migrated in this database gets nothing there
    assert not [s for s in plan if '"dept_water_supply".' in s or 'SCHEMA "dept_water' in s]


def test_passwords_come_from_configuration_outside_development(tmp_path: Path) -> None:
    production = load_settings(
        {"KAFKA_BOOTSTRAP": "kafka:9092", "DATABASE_URL": "postgresql://m:pw@db/redline"}
    )
    with pytest.raises(ConfigError, match="REDLINE_DB_PASSWORDS is not set"):
        role_passwords(production, CODES)
    short = tmp_path / "passwords.json"
    short.write_text(json.dumps({"redline_registry": "s3cret"}))
    with pytest.raises(ConfigError, match="no password for redline_relay"):
        load_passwords(short, ["redline_registry", "redline_relay"])
    development = load_settings({"REDLINE_HOME": str(tmp_path / "home")})
    made = role_passwords(development, CODES)
    assert made == role_passwords(development, CODES)  # made once, kept
    stored = tmp_path / "home" / "keys" / "database-roles.json"
    assert stored.stat().st_mode & 0o077 == 0


def test_a_role_url_replaces_the_migrators_login() -> None:
    url = role_url(
        "postgresql://migrator:pw@db:5432/redline?sslmode=require", "redline_relay", "p/w@"
    )
    assert url == "postgresql://redline_relay:p%2Fw%40@db:5432/redline?sslmode=require"
    assert role_url("postgresql://redline@127.0.0.1:5/redline", "r", "x") == (
        "postgresql://r:x@127.0.0.1:5/redline"
    )
