"""Apply the numbered SQL files in services/migrations, each once, under an advisory lock.

Two processes migrating at once serialise on the lock; the second finds nothing to do.
A file that changed after it was applied is refused rather than silently skipped. Its
errors name the database with the password redacted: they are printed and logged.

SQL that several schemas need alike (a consumer's tracking table, its outbox and relay,
the audit log) is written once in `services/migrations/shared/` and a migration names it
on a line of its own, `-- include: <name>`. The checksum covers the text as included, so
a shared file edited after a schema applied it is refused there like any edited file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from events.logmask import redact_passwords
from services.errors import DatabaseError

# Any fixed 64-bit number; it only has to be the same in every process.
_MIGRATION_LOCK_ID = 0x7265646C696E65  # "redline"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_INCLUDE = re.compile(r"^-- include: ([a-z0-9_]+)\n", re.MULTILINE)
_SHARED = "services.migrations.shared"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str = "services.migrations") -> list[Migration]:
    folder = resources.files(package)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            sql = expand_includes(entry.read_text(encoding="utf-8"), entry.name)
            found.append(Migration(int(match[1]), match[2], sql))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise DatabaseError(f"two migrations share a number: {versions}")
    return found


def expand_includes(sql: str, file_name: str) -> str:
    """The migration's text with each `-- include: <name>` line replaced by that shared file."""
    shared = resources.files(_SHARED)

    def included(match: re.Match[str]) -> str:
        fragment = shared / f"{match[1]}.sql"
        if not fragment.is_file():
            raise DatabaseError(f"{file_name} includes {match[1]!r}, which {_SHARED} lacks")
        return fragment.read_text(encoding="utf-8")

    return _INCLUDE.sub(included, sql)


_SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


async def migrate(
    database_url: str, *, package: str = "services.migrations", schema: str = "public"
) -> list[str]:
    """Bring a schema up to date; returns the names of the migrations it applied.

    A package's SQL may name `{schema}`, so one set of files serves every department.
    """
    if not _SCHEMA_NAME.match(schema):
        raise DatabaseError(f"not a schema name: {schema!r}")
    lock_id = _MIGRATION_LOCK_ID ^ int(hashlib.sha256(schema.encode()).hexdigest()[:8], 16)
    conn = await _connect(database_url)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", lock_id)
        try:
            if await _up_to_date(conn, package, schema):
                # A service's role may read the bookkeeping but create nothing (#18): the
                # migrator has run, and there is nothing to do.
                return applied
            applied = await _apply_pending(conn, package, schema)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_id)
    except asyncpg.InsufficientPrivilegeError as exc:
        raise DatabaseError(
            f"migration failed: {exc}: schema {schema} has migrations to apply and this "
            "service's role may not create anything; the migrator applies them (`make run` "
            "at start-up, or `redline migrate` with the migrator's DATABASE_URL)"
        ) from exc
    except asyncpg.PostgresError as exc:
        raise DatabaseError(f"migration failed: {exc}") from exc
    finally:
        await conn.close()
    return applied


async def _up_to_date(conn: asyncpg.Connection, package: str, schema: str) -> bool:
    """Whether every migration of `package` is applied to `schema` as it is now: a read
    that needs no privilege beyond SELECT on the schema's bookkeeping."""
    if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations") is None:
        return False
    try:
        rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migrations")
    except asyncpg.InsufficientPrivilegeError:
        return False
    done = {row["version"]: row["checksum"] for row in rows}
    return all(done.get(m.version) == m.checksum for m in load_migrations(package))


async def _connect(database_url: str) -> asyncpg.Connection:
    """A connection, or an error that never shows the password."""
    shown = redact_passwords(database_url)
    try:
        conn = await asyncpg.connect(database_url)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot connect to {shown}: {redact_passwords(str(exc))}") from exc
    except ValueError as exc:  # asyncpg.ClientConfigurationError is one too
        # asyncpg could not parse the URL: where its password ends is unknown, and the
        # parser's message may quote a piece of it, so neither is shown (nor chained).
        raise DatabaseError(
            f"DATABASE_URL is not a usable database URL ({type(exc).__name__}): write it as "
            "postgresql://user:password@host:port/database, special characters of the "
            "password percent-encoded"
        ) from None
    return conn


async def _apply_pending(conn: asyncpg.Connection, package: str, schema: str) -> list[str]:
    """Apply, each in its own transaction, the migrations not yet recorded; refuse an
    applied one whose file was edited since."""
    applied: list[str] = []
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
               version    integer PRIMARY KEY,
               name       text NOT NULL,
               checksum   text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    done = {
        row["version"]: row["checksum"]
        for row in await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migrations")
    }
    for migration in load_migrations(package):
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise DatabaseError(
                    f"migration {migration.version:04d}_{migration.name} was edited "
                    "after it was applied; add a new migration instead"
                )
            continue
        async with conn.transaction():
            await conn.execute(migration.sql.replace("{schema}", schema))
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (version, name, checksum) "
                "VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
        applied.append(f"{migration.version:04d}_{migration.name}")
    return applied
