"""Wiring: the one place that builds the real adapters and hands them to the handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from events.authorities import NATURAL_RESOURCES, Authority
from events.catalogue import load_catalogue
from events.errors import EventError
from events.privacy import SubjectHasher
from events.signing import Signer
from services.adapters.blocklist_store import MIGRATIONS as BLOCKLIST_MIGRATIONS
from services.adapters.blocklist_store import SCHEMA as BLOCKLIST_SCHEMA
from services.adapters.blocklist_store import PostgresBlocklistStore
from services.adapters.department_store import PostgresDepartmentStore
from services.adapters.migrate import migrate
from services.adapters.postgres import create_pool
from services.adapters.registry_store import PostgresRegistryStore
from services.adapters.report_store import PostgresReportStore
from services.blocklist.queries import CentralChecks
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.errors import ConfigError
from services.registry.handlers import Registry, load_townships
from services.reports.handlers import Reports
from services.runtime.devkeys import load_dev_signer


def utc_now() -> datetime:
    return datetime.now(UTC)


def load_signer(settings: Settings, authority: Authority) -> Signer:
    """The authority's signing key: the configured one, else the development key, which
    only the embedded system (or REDLINE_DEV_KEYS=1) may use: a production service never
    makes itself a key that nobody trusts."""
    if settings.signing_key is not None and settings.signing_key_id is not None:
        try:
            return Signer.from_pem(settings.signing_key_id, settings.signing_key.read_bytes())
        except OSError as exc:
            raise ConfigError(f"REDLINE_SIGNING_KEY: cannot read {settings.signing_key}") from exc
    settings.dev_key_fallback("REDLINE_SIGNING_KEY and REDLINE_SIGNING_KEY_ID")
    return load_dev_signer(settings.home, authority)


def zone(settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"REDLINE_TIMEZONE: unknown time zone {settings.timezone!r}") from exc


@asynccontextmanager
async def registry_store(settings: Settings) -> AsyncIterator[PostgresRegistryStore]:
    _, database = settings.require()
    pool = await create_pool(database)
    store = PostgresRegistryStore(pool, database)
    try:
        yield store
    finally:
        await store.outbox.close()
        await pool.close()


@asynccontextmanager
async def bootstrap_registry(
    settings: Settings, clock: Callable[[], datetime] = utc_now
) -> AsyncIterator[Registry]:
    """The registry with its real store; the pool closes when the context ends. The
    catalogue is loaded once: the registry decides every case's measures from it."""
    signer = load_signer(settings, NATURAL_RESOURCES)
    townships = load_townships()
    timezone = zone(settings)
    catalogue = load_catalogue()
    async with registry_store(settings) as store:
        yield Registry(store, signer, townships, clock, timezone, catalogue=catalogue)


@asynccontextmanager
async def department_queries(settings: Settings) -> AsyncIterator[DepartmentQueries]:
    """Reads over every department's schema (in the embedded system, one database)."""
    _, database = settings.require()
    pool = await create_pool(database, max_size=4)
    try:
        yield DepartmentQueries(lambda code: PostgresDepartmentStore(pool, code))
    finally:
        await pool.close()


def load_hasher(settings: Settings) -> SubjectHasher:
    """The deployment's subject key, which blocklists hash subject IDs with."""
    try:
        return SubjectHasher.from_file(settings.subject_key)
    except EventError as exc:
        raise ConfigError(f"REDLINE_SUBJECT_KEY: {exc}") from exc


@asynccontextmanager
async def central_checks(settings: Settings) -> AsyncIterator[CentralChecks]:
    """Checks against the blocklist builder's tables (created here if it has not yet run)."""
    _, database = settings.require()
    hasher = load_hasher(settings)
    await migrate(database, package=BLOCKLIST_MIGRATIONS, schema=BLOCKLIST_SCHEMA)
    pool = await create_pool(database, max_size=4)
    try:
        yield CentralChecks(
            PostgresBlocklistStore(pool),
            hasher,
            load_catalogue(),
            utc_now,
            freshness_bound=settings.check_freshness_bound,
        )
    finally:
        await pool.close()


def build_reports(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Reports:
    """Reports over the database in `settings` (the broker is not needed); each report
    opens its own connection, so nothing here needs closing."""
    database = settings.database_url or settings.require()[1]
    return Reports(
        PostgresReportStore(database),
        townships={code: township.name for code, township in load_townships().items()},
        departments={d.code: d.name_zh for d in load_catalogue().departments},
        timezone=zone(settings),
        clock=clock,
    )
