"""The one exception base of the services package; third-party errors are wrapped into it."""

from events.errors import FieldError


class RedlineError(Exception):
    """Base of every error the services raise on purpose."""


class ConfigError(RedlineError):
    """A setting is missing or malformed; the message names it."""


class StartupError(RedlineError):
    """A process or server did not become ready in time."""


class BrokerError(RedlineError):
    """The Kafka-protocol broker refused or failed a request."""


class DatabaseError(RedlineError):
    """PostgreSQL refused or failed a request."""


class InvalidInput(FieldError, RedlineError):
    """Input refused before anything is written (HTTP 422); names the field."""
