"""Wiring: the one place that builds the real adapters and hands them to the handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

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
from services.adapters.referral_store import PostgresReferralReader
from services.adapters.registry_store import PostgresRegistryStore
from services.adapters.report_store import PostgresReportStore
from services.adapters.township_store import PostgresTownshipStore
from services.blocklist.queries import CentralChecks
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.errors import ConfigError
from services.referrals.handlers import Referrals
from services.registry.handlers import Registry
from services.reports.handlers import Reports
from services.reports.ranking import RankingRule, parse_ranking_rule
from services.runtime.devkeys import load_dev_signer
from services.townships.directory import load_township_aliases, load_townships, township_names
from services.townships.handlers import Townships


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
        yield Registry(
            store,
            signer,
            townships,
            clock,
            timezone,
            catalogue=catalogue,
            abolished=load_township_aliases(),
        )


def referrals_for(registry: Registry, clock: Callable[[], datetime] | None = None) -> Referrals:
    """The referral service on the registry's own store: its commands join the registry's
    transactions, idempotency keys and audit chain, and read through the same pool."""
    store = registry.store
    if not isinstance(store, PostgresRegistryStore):
        raise ConfigError("referrals need the registry's PostgreSQL store")
    return Referrals(
        store,
        PostgresReferralReader(store.pool),
        catalogue=registry.catalogue,
        townships=registry.townships,
        clock=clock or registry.clock,
        timezone=registry.timezone,
    )


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


def build_reports(
    settings: Settings,
    clock: Callable[[], datetime] = utc_now,
    ranking_rule: RankingRule | None = None,
) -> Reports:
    """Reports over the database in `settings` (the broker is not needed); each report
    opens its own connection, so nothing here needs closing."""
    database = settings.database_url or settings.require()[1]
    return Reports(
        PostgresReportStore(database),
        townships=township_names(),
        departments={d.code: d.name_zh for d in load_catalogue().departments},
        timezone=zone(settings),
        clock=clock,
        ranking_rule=ranking_rule or load_ranking_rule(settings.city_config),
    )


CITY_FILE = Path(__file__).parent / "reports" / "city.yaml"


def load_ranking_rule(path: Path | None = None) -> RankingRule:
    """The city's ranking rule (seed §四(五)): the deployment's file (`Settings.city_config`,
    REDLINE_CITY_CONFIG), else the one shipped in services/reports/city.yaml. Refused at
    start-up, with the file and the key named, when it is not a valid rule."""
    chosen = path or CITY_FILE
    try:
        document = yaml.safe_load(chosen.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"REDLINE_CITY_CONFIG: cannot read {chosen}: {exc}") from exc
    try:
        return parse_ranking_rule(document, str(chosen))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def build_townships(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Townships:
    """Township accountability over the database in `settings`; each command opens its own
    connection, so nothing here needs closing."""
    database = settings.database_url or settings.require()[1]
    return Townships(
        PostgresTownshipStore(database),
        townships=load_townships(),
        aliases=load_township_aliases(),
        timezone=zone(settings),
        clock=clock,
    )
