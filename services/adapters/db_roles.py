"""PostgreSQL least privilege: a login role per service and per department, each a member
of NOLOGIN group roles that hold exactly its grants; only the migrator creates anything.

The migrator (the role of the supervisor's DATABASE_URL, which owns every schema) runs
`prepare_database` after the migrations: every schema is migrated, then the grants below
are computed from the tables that exist and applied in one transaction. A schema's rule
covers each of its tables that no rule of the same group names, so a table a later
migration adds is covered without editing this file; `ALTER DEFAULT PRIVILEGES` covers it
in between. Two caps hold for every group whatever the rules say: an audit log is only
ever read and appended to, and the migrations' own bookkeeping is only read.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from events.logmask import redact_passwords
from services.adapters.blocklist_store import MIGRATIONS as BLOCKLIST_MIGRATIONS
from services.adapters.blocklist_store import SCHEMA as BLOCKLIST_SCHEMA
from services.adapters.department_store import department_schema
from services.adapters.feedback_store import MIGRATIONS as FEEDBACK_MIGRATIONS
from services.adapters.feedback_store import SCHEMA as FEEDBACK_SCHEMA
from services.adapters.migrate import migrate
from services.config import Settings
from services.errors import ConfigError, DatabaseError

DEPARTMENT_MIGRATIONS = "services.departments.migrations"

READ = ("SELECT",)
APPEND = ("SELECT", "INSERT")
WRITE = ("SELECT", "INSERT", "UPDATE")

# Whatever a rule grants, these tables never give more than this to any service role.
CAPS: Mapping[str, tuple[str, ...]] = {"audit_log": APPEND, "schema_migrations": READ}

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_ALL_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@dataclass(frozen=True)
class Rule:
    """`privileges` on `tables` of `schema`; no tables: every table the group's other rules
    in that schema do not name, including those later migrations add."""

    schema: str
    privileges: tuple[str, ...]
    tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupRole:
    """A NOLOGIN role holding grants; login roles get them by membership."""

    name: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class LoginRole:
    """What one service process connects as."""

    name: str
    groups: tuple[str, ...]
    service: str


def department_role(code: str) -> str:
    return f"redline_dept_{code}"


def _group(name: str) -> str:
    return f"redline_{name}_access"


def role_spec(codes: Sequence[str]) -> tuple[list[GroupRole], list[LoginRole]]:
    """Every group role with its rules and every login role with its groups."""
    departments = [department_schema(code) for code in codes]
    registry = GroupRole(
        _group("registry"),
        (
            Rule("public", WRITE),
            Rule("public", APPEND, ("audit_log", "outbox")),  # the relay marks rows sent
            Rule("public", READ, ("responses", "consumed_events", "relay_state")),
            Rule("public", (*WRITE, "DELETE"), ("restoration_sign_offs",)),  # voided
        ),
    )
    relay = GroupRole(
        _group("relay"),
        (
            Rule("public", ("SELECT", "UPDATE"), ("outbox",)),
            Rule("public", WRITE, ("relay_state",)),
        ),
    )
    feedback = GroupRole(
        _group("feedback"),
        (Rule("public", WRITE, ("responses", "consumed_events")), Rule(FEEDBACK_SCHEMA, WRITE)),
    )
    # The builder's schema is a projection it rebuilds from the stream: its own to prune.
    blocklist = GroupRole(_group("blocklist"), (Rule(BLOCKLIST_SCHEMA, (*WRITE, "DELETE")),))
    reader = GroupRole(
        _group("reader"),
        tuple(
            Rule(schema, READ)
            for schema in ("public", FEEDBACK_SCHEMA, BLOCKLIST_SCHEMA, *departments)
        ),
    )
    auditor = GroupRole(
        _group("auditor"),
        tuple(Rule(schema, READ, ("audit_log",)) for schema in ("public", *departments)),
    )
    groups = [registry, relay, feedback, blocklist, reader, auditor]
    logins = [
        LoginRole("redline_registry", (registry.name, reader.name), "registry API and CLI"),
        LoginRole("redline_relay", (relay.name,), "registry outbox relay"),
        LoginRole("redline_feedback", (feedback.name,), "feedback tracker"),
        LoginRole("redline_blocklist", (blocklist.name,), "blocklist builder"),
        LoginRole("redline_monitor", (reader.name,), "bus monitor"),
        LoginRole("redline_reports", (reader.name,), "reports"),
        LoginRole("redline_audit_anchor", (auditor.name,), "audit checkpoints"),
    ]
    for code, schema in zip(codes, departments, strict=True):
        group = GroupRole(_group(f"dept_{code}"), (Rule(schema, WRITE),))
        groups.append(group)
        logins.append(LoginRole(department_role(code), (group.name,), f"department {code}"))
    return groups, logins


def table_privileges(group: GroupRole, schema: str, table: str) -> tuple[str, ...]:
    """What `group` holds on one table: the rule naming it, else its schema's rule, capped."""
    named = [r for r in group.rules if r.schema == schema and table in r.tables]
    broad = [r for r in group.rules if r.schema == schema and not r.tables]
    chosen = named or broad
    granted = {p for rule in chosen for p in rule.privileges}
    if table in CAPS:
        granted &= set(CAPS[table])
    return tuple(p for p in _ALL_PRIVILEGES if p in granted)


def _ident(name: str) -> str:
    if not _NAME.match(name):
        raise DatabaseError(f"not a role, schema or table name: {name!r}")
    return f'"{name}"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def plan_grants(
    database: str,
    groups: Sequence[GroupRole],
    logins: Sequence[LoginRole],
    tables: Mapping[str, Sequence[str]],
    sequences: Mapping[str, Sequence[str]],
) -> list[str]:
    """The statements that give each group exactly its privileges on the tables that exist
    (`tables`: schema -> table names) and nothing else: no CREATE anywhere, no TEMP, no
    CONNECT for PUBLIC; login roles only by group membership."""
    db = _ident(database)
    statements = [
        f"REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC",
    ]
    for schema in tables:
        statements.append(f"REVOKE ALL ON ALL TABLES IN SCHEMA {_ident(schema)} FROM PUBLIC")
    for group in groups:
        g = _ident(group.name)
        statements.append(f"GRANT CONNECT ON DATABASE {db} TO {g}")
        for schema in dict.fromkeys(rule.schema for rule in group.rules):
            if schema not in tables:
                continue  # not migrated here (a department this database does not serve)
            s = _ident(schema)
            statements += [
                f"REVOKE ALL ON SCHEMA {s} FROM {g}",
                f"GRANT USAGE ON SCHEMA {s} TO {g}",
            ]
            inserts = False
            for table in tables[schema]:
                t = f"{s}.{_ident(table)}"
                statements.append(f"REVOKE ALL ON TABLE {t} FROM {g}")
                privileges = table_privileges(group, schema, table)
                if privileges:
                    statements.append(f"GRANT {', '.join(privileges)} ON TABLE {t} TO {g}")
                inserts = inserts or "INSERT" in privileges
            for sequence in sequences.get(schema, ()):
                q = f"{s}.{_ident(sequence)}"
                statements.append(f"REVOKE ALL ON SEQUENCE {q} FROM {g}")
                if inserts:
                    statements.append(f"GRANT USAGE, SELECT ON SEQUENCE {q} TO {g}")
            for rule in group.rules:
                if rule.schema == schema and not rule.tables:
                    listed = ", ".join(rule.privileges)
                    statements.append(
                        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT {listed} ON TABLES TO {g}"
                    )
                    if "INSERT" in rule.privileges:
                        statements.append(
                            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT "
                            f"ON SEQUENCES TO {g}"
                        )
    return statements


def plan_roles(
    groups: Sequence[GroupRole], logins: Sequence[LoginRole], passwords: Mapping[str, str]
) -> list[str]:
    """Create the roles that are missing; set what every role may be (never a superuser,
    never creating databases or roles) and each login role's password and groups."""
    statements = []
    limits = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    for name, login in [*((g.name, False) for g in groups), *((r.name, True) for r in logins)]:
        role = _ident(name)
        statements.append(
            "DO $$ BEGIN CREATE ROLE "
            f"{role}; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
        if login:
            if name not in passwords:
                raise ConfigError(f"REDLINE_DB_PASSWORDS: no password for role {name}")
            statements.append(
                f"ALTER ROLE {role} LOGIN INHERIT {limits} PASSWORD {_literal(passwords[name])}"
            )
        else:
            statements.append(f"ALTER ROLE {role} NOLOGIN {limits}")
    for login_role in logins:
        for group in login_role.groups:
            statements.append(f"GRANT {_ident(group)} TO {_ident(login_role.name)}")
    return statements


_MANAGED_SCHEMAS = (
    "n.nspname IN ('public', 'feedback', 'blocklist') OR n.nspname ~ '^dept_[a-z0-9_]+$'"
)


async def _catalog(
    conn: asyncpg.Connection,
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    tables: dict[str, list[str]] = {}
    sequences: dict[str, list[str]] = {}
    rows = await conn.fetch(
        "SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind FROM pg_class c "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ({_MANAGED_SCHEMAS}) "
        "AND c.relkind IN ('r', 'p', 'v', 'S') ORDER BY 1, 2"
    )
    for schema in await conn.fetch(
        f"SELECT n.nspname FROM pg_namespace n WHERE {_MANAGED_SCHEMAS} ORDER BY 1"
    ):
        tables[schema["nspname"]] = []
    for row in rows:
        found = sequences if row["kind"] == "S" else tables
        found.setdefault(row["schema"], []).append(row["name"])
    return tables, sequences


_ROLES_LOCK = 0x726F6C6573  # "roles": one apply at a time per database


async def apply_roles(
    database_url: str, codes: Sequence[str], passwords: Mapping[str, str]
) -> None:
    """As the migrator: create the roles and give each exactly its grants, in one step."""
    groups, logins = role_spec(codes)
    shown = redact_passwords(database_url)
    try:
        conn = await asyncpg.connect(database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot connect to {shown}: {redact_passwords(str(exc))}") from exc
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _ROLES_LOCK)
            database = await conn.fetchval("SELECT current_database()")
            tables, sequences = await _catalog(conn)
            script = [
                *plan_roles(groups, logins, passwords),
                *plan_grants(database, groups, logins, tables, sequences),
            ]
            await conn.execute(";\n".join(script))
    except asyncpg.PostgresError as exc:
        # The statements hold passwords: the error names the failure, never the script.
        raise DatabaseError(
            f"applying the database roles failed: {type(exc).__name__}: "
            f"{redact_passwords(str(exc).split('PASSWORD')[0])}"
        ) from None
    finally:
        await conn.close()


def login_roles(codes: Sequence[str]) -> list[str]:
    return [role.name for role in role_spec(codes)[1]]


def ensure_dev_passwords(path: Path, roles: Iterable[str]) -> dict[str, str]:
    """Development passwords, one per role, made once and kept owner-only at `path`."""
    found: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [role for role in roles if role not in found]
    if missing:
        found |= {role: secrets.token_urlsafe(24) for role in missing}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.touch(mode=0o600)
        partial.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
        os.replace(partial, path)
    return found


def load_passwords(path: Path, roles: Iterable[str]) -> dict[str, str]:
    """The configured passwords (a JSON object: role -> password); a missing role is named."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"REDLINE_DB_PASSWORDS: cannot read {path}: {type(exc).__name__}"
        ) from None
    if not isinstance(found, dict) or not all(isinstance(v, str) and v for v in found.values()):
        raise ConfigError(f"REDLINE_DB_PASSWORDS: {path} must map each role to a password")
    missing = [role for role in roles if role not in found]
    if missing:
        raise ConfigError(f"REDLINE_DB_PASSWORDS: {path} has no password for {', '.join(missing)}")
    return {str(k): str(v) for k, v in found.items()}


def role_passwords(settings: Settings, codes: Sequence[str]) -> dict[str, str]:
    """Each login role's password: from REDLINE_DB_PASSWORDS, else (development only) made
    under the home directory like the development keys."""
    roles = login_roles(codes)
    if settings.db_passwords_path is not None:
        return load_passwords(settings.db_passwords_path, roles)
    settings.dev_key_fallback("REDLINE_DB_PASSWORDS")
    return ensure_dev_passwords(settings.home / "keys" / "database-roles.json", roles)


def role_url(database_url: str, role: str, password: str) -> str:
    """The migrator's database URL with `role` and its password in place of its login."""
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    login = f"{quote(role, safe='')}:{quote(password, safe='')}@"
    return urlunsplit(parts._replace(netloc=login + host))


async def migrate_all(database_url: str, codes: Sequence[str]) -> list[str]:
    """Every schema's migrations, the registry's first: only the migrator may create."""
    applied = await migrate(database_url)
    applied += await migrate(database_url, package=FEEDBACK_MIGRATIONS, schema=FEEDBACK_SCHEMA)
    applied += await migrate(database_url, package=BLOCKLIST_MIGRATIONS, schema=BLOCKLIST_SCHEMA)
    for code in codes:
        schema = department_schema(code)
        applied += [
            f"{schema}.{name}"
            for name in await migrate(database_url, package=DEPARTMENT_MIGRATIONS, schema=schema)
        ]
    return applied


async def prepare_database(
    database_url: str, codes: Sequence[str], passwords: Mapping[str, str]
) -> dict[str, str]:
    """Migrate every schema, apply the roles; each login role's database URL."""
    await migrate_all(database_url, codes)
    await apply_roles(database_url, codes, passwords)
    return {role: role_url(database_url, role, passwords[role]) for role in login_roles(codes)}
