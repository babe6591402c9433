"""Settings from the environment, read once at start-up and passed down explicitly.

`KAFKA_BOOTSTRAP` and `DATABASE_URL` name production servers; when both are unset the
embedded broker and Postgres are used, and `make run` writes their addresses to
`.redline/endpoints.json` so the CLI in another terminal finds them. Nothing else reads
the environment: every variable is here, and in the README's "Settings" table with its
default (tests/unit/test_settings_table.py keeps the two in step).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from events.catalogue import load_catalogue
from events.fetch_pace import FetchPace
from services.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent

# SCRAM only: PLAIN would send the password itself, and Tansu does not offer it.
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


@dataclass(frozen=True)
class KafkaAuth:
    """One SASL identity for every Kafka client of a process (a user per service)."""

    username: str
    password: str = field(repr=False)
    mechanism: str = "SCRAM-SHA-512"
    tls: bool = False  # SASL_SSL, trusting the system CAs (or SSL_CERT_FILE)

    @property
    def security_protocol(self) -> str:
        return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str | None
    database_url: str | None = field(repr=False)  # may hold the password
    home: Path
    kafka_replication_factor: int = 1
    signing_key: Path | None = None
    signing_key_id: str | None = None
    timezone: str = "Asia/Shanghai"
    api_port: int = 8000
    relay_batch_size: int = 2000
    trust_store_path: Path | None = None
    demo: bool = True
    subject_key_path: Path | None = None
    api_tokens_path: Path | None = None
    # Development keys under `home` may stand in for unset key settings: true when the
    # embedded servers are used, else only when REDLINE_DEV_KEYS=1 asks for it.
    dev_keys_allowed: bool = False
    # How long a consumer's fetch may wait for data while records flow, and at most once
    # its stream is quiet (events/fetch_pace.py). Tansu answers a waiting fetch late, so
    # the first bounds delivery latency there and the second the cost of an idle stream.
    fetch_wait_ms: int = 100
    fetch_wait_idle_ms: int = 1000
    kafka_auth: KafkaAuth | None = None
    # GET /v1/checks per principal: a token bucket of this rate (a second) and burst.
    check_rate: float = 50.0
    check_burst: int = 100
    # The central check answers stale (503) once the blocklist builder has not vouched for
    # its tables for this long, as a subscriber's replica does past its heartbeats.
    check_freshness_bound: float = 30.0
    # REDLINE_SUBSCRIBERS: each production subscriber's authority name -> the utility or
    # bank department it answers for (the demo subscribers are always known).
    subscribers: Mapping[str, str] = field(default_factory=dict)
    # REDLINE_DB_PASSWORDS: a JSON file of each service's database role -> password, which
    # the migrator sets and the supervisor builds each child's DATABASE_URL from (#18).
    db_passwords_path: Path | None = None
    # The audit anchor publishes a schema's head once it is this many entries or seconds
    # past its last checkpoint (REDLINE_AUDIT_CHECKPOINT_ENTRIES / _SECONDS).
    audit_checkpoint_entries: int = 100
    audit_checkpoint_seconds: float = 10.0
    # Where the registry API listens (REDLINE_API_HOST; its port is REDLINE_API_PORT).
    api_host: str = "127.0.0.1"
    # REDLINE_METRICS=off makes the counters no-ops (the benchmark compares the two);
    # REDLINE_METRICS_PORT/_HOST: where a service serves /metrics (unset: nowhere).
    metrics: bool = True
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Whether `make run` starts a local Prometheus when one is installed.
    prometheus: bool = True
    # A department worker's log level (faust logs a lot at INFO).
    log_level: str = "WARNING"
    # The city's ranking rule file (REDLINE_CITY_CONFIG); None: services/reports/city.yaml.
    city_config: Path | None = None
    # REDLINE_DEPARTMENTS: `make run` hosts every department in one process (host), or
    # runs one process each (standalone), as bureaus with their own servers do.
    departments_hosted: bool = True
    # REDLINE_DEPARTMENT_DATABASE_URLS: a JSON object, department code -> its DATABASE_URL
    # (its own role), which the supervisor gives a department host.
    department_database_urls: Mapping[str, str] = field(default_factory=dict, repr=False)
    # REDLINE_SYSTEM: `make run` hosts the bus's own services (relay, feedback tracker,
    # blocklist builder, monitor, audit anchor) in one process (host), or one each.
    system_hosted: bool = True
    # REDLINE_SYSTEM_DATABASE_URLS: a JSON object, service name -> its DATABASE_URL (its
    # own role), which the supervisor gives the system host.
    system_database_urls: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def embedded(self) -> bool:
        return self.kafka_bootstrap is None and self.database_url is None

    @property
    def dev_keys(self) -> bool:
        """Whether development keys may stand in for a key setting that is not set."""
        return self.embedded or self.dev_keys_allowed

    def dev_key_fallback(self, setting: str) -> None:
        """Allow a development key in place of `setting`, or refuse, naming it: a service
        on external servers signs, verifies and hashes only with keys it was given."""
        if not self.dev_keys:
            raise ConfigError(
                f"{setting} is not set: on external servers (KAFKA_BOOTSTRAP, DATABASE_URL) "
                "keys must be configured; development keys are used only by `make run` on "
                "the embedded servers, or with REDLINE_DEV_KEYS=1 (test systems)"
            )

    def missing_keys(self) -> list[str]:
        """Every key setting a start on these servers lacks (none when dev keys may do)."""
        if self.dev_keys:
            return []
        wanted = {
            "REDLINE_SIGNING_KEY and REDLINE_SIGNING_KEY_ID": self.signing_key,
            "REDLINE_TRUST_STORE": self.trust_store_path,
            "REDLINE_SUBJECT_KEY": self.subject_key_path,
            "REDLINE_API_TOKENS": self.api_tokens_path,
        }
        return [setting for setting, value in wanted.items() if value is None]

    def key_file(self, given: Path | None, setting: str, development: Path) -> Path:
        """The key file `setting` gave, else the development one where it may do."""
        if given is not None:
            return given
        self.dev_key_fallback(setting)
        return development

    @property
    def trust_store(self) -> Path:
        """Which keys may issue which events: REDLINE_TRUST_STORE, else the development one."""
        return self.key_file(
            self.trust_store_path, "REDLINE_TRUST_STORE", self.home / "truststore.yaml"
        )

    @property
    def subject_key(self) -> Path:
        """The HMAC key for subject IDs on blocklists: REDLINE_SUBJECT_KEY, else the dev one."""
        return self.key_file(
            self.subject_key_path, "REDLINE_SUBJECT_KEY", self.home / "keys" / "subject.key"
        )

    @property
    def api_tokens(self) -> Path:
        """Hashed bearer tokens per role: REDLINE_API_TOKENS, else the development ones."""
        return self.key_file(self.api_tokens_path, "REDLINE_API_TOKENS", self.home / "tokens.yaml")

    @property
    def endpoints_file(self) -> Path:
        return self.home / "endpoints.json"

    def fetch_pace(self) -> FetchPace:
        """A consumer's fetch wait, from these settings (one per fetch loop)."""
        return FetchPace(self.fetch_wait_ms, self.fetch_wait_idle_ms)

    def require(self) -> tuple[str, str]:
        """The broker and database addresses, or a ConfigError saying how to get them."""
        if self.kafka_bootstrap and self.database_url:
            return self.kafka_bootstrap, self.database_url
        raise ConfigError(
            "KAFKA_BOOTSTRAP and DATABASE_URL are not set and no embedded system is running "
            f"(no {self.endpoints_file}); start one with `make run` or set both variables"
        )

    def with_endpoints(self, kafka_bootstrap: str, database_url: str) -> Settings:
        """These settings on the named servers; a system started on the embedded ones keeps
        its development keys (`make run` names them to its children by address)."""
        return replace(
            self,
            kafka_bootstrap=kafka_bootstrap,
            database_url=database_url,
            dev_keys_allowed=self.dev_keys,
        )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    kafka = env.get("KAFKA_BOOTSTRAP") or None
    database = env.get("DATABASE_URL") or None
    if (kafka is None) != (database is None):
        missing = "DATABASE_URL" if database is None else "KAFKA_BOOTSTRAP"
        raise ConfigError(f"{missing} must be set too: use both external servers or neither")
    home = Path(env.get("REDLINE_HOME") or REPO_ROOT / ".redline")
    signing_key = env.get("REDLINE_SIGNING_KEY") or None
    signing_key_id = env.get("REDLINE_SIGNING_KEY_ID") or None
    if (signing_key is None) != (signing_key_id is None):
        raise ConfigError("REDLINE_SIGNING_KEY and REDLINE_SIGNING_KEY_ID go together")
    fetch_wait_ms, fetch_wait_idle_ms = _fetch_waits(env)
    return Settings(
        kafka,
        database,
        home,
        _positive(env, "REDLINE_KAFKA_REPLICATION", 1),
        signing_key=Path(signing_key) if signing_key else None,
        signing_key_id=signing_key_id,
        timezone=env.get("REDLINE_TIMEZONE", "Asia/Shanghai"),
        api_port=_port(env, "REDLINE_API_PORT", 8000),
        relay_batch_size=_positive(env, "REDLINE_RELAY_BATCH", 2000),
        trust_store_path=Path(env["REDLINE_TRUST_STORE"])
        if env.get("REDLINE_TRUST_STORE")
        else None,
        demo=_switch(env, "REDLINE_DEMO", default=True),
        fetch_wait_ms=fetch_wait_ms,
        fetch_wait_idle_ms=fetch_wait_idle_ms,
        api_tokens_path=Path(env["REDLINE_API_TOKENS"]) if env.get("REDLINE_API_TOKENS") else None,
        subject_key_path=Path(env["REDLINE_SUBJECT_KEY"])
        if env.get("REDLINE_SUBJECT_KEY")
        else None,
        kafka_auth=_kafka_auth(env),
        dev_keys_allowed=_switch(env, "REDLINE_DEV_KEYS", default=False),
        check_rate=_positive_number(env, "REDLINE_CHECK_RATE", 50.0),
        check_burst=_positive(env, "REDLINE_CHECK_BURST", 100),
        check_freshness_bound=_positive_number(env, "REDLINE_CHECK_FRESHNESS_BOUND", 30.0),
        subscribers=_subscribers(env, "REDLINE_SUBSCRIBERS"),
        db_passwords_path=Path(env["REDLINE_DB_PASSWORDS"])
        if env.get("REDLINE_DB_PASSWORDS")
        else None,
        audit_checkpoint_entries=_positive(env, "REDLINE_AUDIT_CHECKPOINT_ENTRIES", 100),
        audit_checkpoint_seconds=_positive_number(env, "REDLINE_AUDIT_CHECKPOINT_SECONDS", 10.0),
        api_host=_host(env, "REDLINE_API_HOST"),
        metrics=_switch(env, "REDLINE_METRICS", default=True),
        metrics_port=_optional_port(env, "REDLINE_METRICS_PORT"),
        metrics_host=_host(env, "REDLINE_METRICS_HOST"),
        prometheus=_switch(env, "REDLINE_PROMETHEUS", default=True),
        log_level=_log_level(env, "REDLINE_LOG_LEVEL"),
        city_config=Path(env["REDLINE_CITY_CONFIG"]) if env.get("REDLINE_CITY_CONFIG") else None,
        departments_hosted=_choice(env, "REDLINE_DEPARTMENTS", ("host", "standalone")) == "host",
        department_database_urls=_url_map(env, "REDLINE_DEPARTMENT_DATABASE_URLS"),
        system_hosted=_choice(env, "REDLINE_SYSTEM", ("host", "standalone")) == "host",
        system_database_urls=_url_map(env, "REDLINE_SYSTEM_DATABASE_URLS", keys="service names"),
    )


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`, the first by default."""
    value = env.get(name) or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def _url_map(
    env: Mapping[str, str], name: str, *, keys: str = "department codes"
) -> dict[str, str]:
    """A JSON object of names to non-empty URLs, or nothing when unset."""
    text = env.get(name)
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        raise ConfigError(f"{name}: not JSON (an object of name -> URL)") from None
    if not isinstance(found, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in found.items()
    ):
        raise ConfigError(f"{name}: must map {keys} to database URLs")
    return found


def _fetch_waits(env: Mapping[str, str]) -> tuple[int, int]:
    """The fetch wait while records flow, and the longest once quiet (not below it)."""
    busy = _positive(env, "REDLINE_FETCH_WAIT_MS", 100)
    idle = _positive(env, "REDLINE_FETCH_WAIT_IDLE_MS", max(1000, busy))
    if idle < busy:
        raise ConfigError(
            f"REDLINE_FETCH_WAIT_IDLE_MS must be at least REDLINE_FETCH_WAIT_MS ({busy}), "
            f"got {idle}"
        )
    return busy, idle


def _kafka_auth(env: Mapping[str, str]) -> KafkaAuth | None:
    """SASL credentials, or None for a broker without authentication; half a pair is refused."""
    username = env.get("REDLINE_KAFKA_USERNAME") or None
    password = env.get("REDLINE_KAFKA_PASSWORD") or None
    mechanism = env.get("REDLINE_KAFKA_SASL_MECHANISM") or None
    tls = _switch(env, "REDLINE_KAFKA_TLS", default=False)
    if username is None:
        for name in ("REDLINE_KAFKA_PASSWORD", "REDLINE_KAFKA_SASL_MECHANISM"):
            if env.get(name):
                raise ConfigError(f"{name} is set but REDLINE_KAFKA_USERNAME is not: set both")
        if tls:
            raise ConfigError("REDLINE_KAFKA_TLS needs REDLINE_KAFKA_USERNAME and _PASSWORD")
        return None
    if password is None:
        raise ConfigError("REDLINE_KAFKA_PASSWORD must be set too: a username needs its password")
    if mechanism is not None and mechanism.upper() not in SASL_MECHANISMS:
        raise ConfigError(
            f"REDLINE_KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)}, "
            f"got {mechanism!r}"
        )
    return KafkaAuth(username, password, (mechanism or SASL_MECHANISMS[0]).upper(), tls)


_AUTHORITY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _subscribers(env: Mapping[str, str], name: str) -> dict[str, str]:
    """`name=department,name2=department2`: which utility or bank department each
    subscriber (by the authority name it signs as) answers for; anything else is refused."""
    value = env.get(name, "").strip()
    if not value:
        return {}
    known = {d.code for d in load_catalogue().subscriber_departments}
    found: dict[str, str] = {}
    for item in value.split(","):
        subscriber, equals, department = (part.strip() for part in item.partition("="))
        if not equals or not _AUTHORITY_NAME.match(subscriber):
            raise ConfigError(
                f"{name} must be name=department pairs separated by commas, the name in "
                f"lower case letters, digits and _, got {item.strip()!r}"
            )
        if department not in known:
            raise ConfigError(
                f"{name}: subscriber {subscriber!r} names {department!r}, which is not a "
                f"utility or bank department (one of {', '.join(sorted(known))})"
            )
        if found.get(subscriber, department) != department:
            raise ConfigError(f"{name}: subscriber {subscriber!r} is named twice")
        found[subscriber] = department
    return found


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return number


def _switch(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = env.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"on", "1", "true", "yes"}:
        return True
    if value.lower() in {"off", "0", "false", "no"}:
        return False
    raise ConfigError(f"{name} must be on or off, got {value!r}")


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    port = _optional_port(env, name)
    return default if port is None else port


def _optional_port(env: Mapping[str, str], name: str) -> int | None:
    """A TCP port, or None when unset or empty."""
    value = env.get(name)
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{name} must be a TCP port number, got {value!r}")
    return int(value)


def _host(env: Mapping[str, str], name: str) -> str:
    """An address to listen on: loopback unless set (a container sets 0.0.0.0)."""
    value = env.get(name) or "127.0.0.1"
    if any(character.isspace() for character in value):
        raise ConfigError(f"{name} must be a host name or address, got {value!r}")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "WARNING").upper()
    if value not in LOG_LEVELS:
        raise ConfigError(f"{name} must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value


def load_running_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for a CLI command: the environment, else the running embedded system."""
    settings = load_settings(environ)
    if settings.embedded and settings.endpoints_file.exists():
        try:
            endpoints = json.loads(settings.endpoints_file.read_text())
            running = settings.with_endpoints(
                endpoints["kafka_bootstrap"], endpoints["database_url"]
            )
            # The running system's keys: development ones only if it ran on them (or if
            # REDLINE_DEV_KEYS=1 says so here too).
            ran_on_dev_keys = endpoints.get("dev_keys") is True
            return replace(running, dev_keys_allowed=ran_on_dev_keys or settings.dev_keys_allowed)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"{settings.endpoints_file} is malformed: {exc}") from exc
    return settings
