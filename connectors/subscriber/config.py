"""A subscriber's settings, checked once at start so a typo fails loudly, naming the field.

Field names double as CLI option names (`signing_key` is `--signing-key`) and as the
environment variables `REDLINE_CONNECTOR_<FIELD>`, so an error says what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from connectors.subscriber.errors import ConfigError
from connectors.subscriber.freshness import DEFAULT_BOUND_SECONDS
from events.topics import BLOCKLIST_MEASURES

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,99}$")
# SCRAM only: PLAIN would send the password itself over the wire.
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


def parse_measures(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Measures from a comma-separated string or a list; each must be a blocklist measure."""
    items = value.split(",") if isinstance(value, str) else list(value)
    measures = tuple(dict.fromkeys(m.strip() for m in items if m.strip()))
    if not measures:
        raise ConfigError("measures", f"give at least one of {', '.join(BLOCKLIST_MEASURES)}")
    unknown = [m for m in measures if m not in BLOCKLIST_MEASURES]
    if unknown:
        raise ConfigError(
            "measures",
            f"unknown measure {unknown[0]!r}: expected one of {', '.join(BLOCKLIST_MEASURES)}",
        )
    return measures


def check_webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError("webhook_url", f"must be an http(s) URL with a host, got {url!r}")
    return url


@dataclass(frozen=True)
class SubscriberConfig:
    """Everything one subscriber daemon needs; validated on construction."""

    name: str
    measures: tuple[str, ...]
    bootstrap: str
    replica: Path
    trust_store: Path
    subject_key: Path
    signing_key: Path | None = None
    signing_key_id: str | None = None
    freshness_bound: float = DEFAULT_BOUND_SECONDS
    webhook_url: str | None = None
    kafka_api_version: tuple[int, ...] | None = None
    # The subscriber's own SASL/SCRAM login (one Kafka user per subscriber); None: no SASL.
    kafka_username: str | None = None
    kafka_password: str | None = field(default=None, repr=False)
    kafka_sasl_mechanism: str = SASL_MECHANISMS[0]
    kafka_tls: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ConfigError(
                "name",
                f"{self.name!r} is not an authority code: lower-case letters, digits and "
                "underscores, starting with a letter (e.g. power_supply_demo_subscriber)",
            )
        object.__setattr__(self, "measures", parse_measures(self.measures))
        if not self.bootstrap.strip():
            raise ConfigError("bootstrap", "required: host:port of a Kafka broker")
        if not isinstance(self.freshness_bound, int | float) or not (
            0 < self.freshness_bound <= 86_400
        ):
            raise ConfigError(
                "freshness_bound",
                f"must be between 0 and 86400 seconds, got {self.freshness_bound}",
            )
        if (self.signing_key is None) != (self.signing_key_id is None):
            missing = "signing_key_id" if self.signing_key_id is None else "signing_key"
            raise ConfigError(missing, "the signing key and its key id go together: give both")
        if self.signing_key_id is not None and not self.signing_key_id.strip():
            raise ConfigError("signing_key_id", "must not be empty")
        if self.webhook_url is not None:
            check_webhook_url(self.webhook_url)
        self._check_kafka_login()

    def _check_kafka_login(self) -> None:
        if self.kafka_username is None:
            if self.kafka_password is not None:
                raise ConfigError("kafka_username", "required with kafka_password: give both")
            if self.kafka_tls:
                raise ConfigError("kafka_tls", "TLS comes with a SASL login: give kafka_username")
            return
        if not self.kafka_username.strip():
            raise ConfigError("kafka_username", "must not be empty")
        if not self.kafka_password:
            raise ConfigError("kafka_password", "required with kafka_username: give both")
        mechanism = self.kafka_sasl_mechanism.upper()
        if mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                "kafka_sasl_mechanism",
                f"must be one of {', '.join(SASL_MECHANISMS)}, got {self.kafka_sasl_mechanism!r}",
            )
        object.__setattr__(self, "kafka_sasl_mechanism", mechanism)

    @property
    def source(self) -> str:
        """The CloudEvents source the subscriber signs as, as the trust store names it."""
        return f"/authorities/{self.name}"
