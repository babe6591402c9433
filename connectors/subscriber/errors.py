"""The one exception family of the subscriber connector, so a host application can catch
everything it raises in one place and tell bad input from a broken installation."""

from __future__ import annotations

from events.errors import FieldError


class ConnectorError(Exception):
    """Base of every error the connector raises."""


class InvalidInput(FieldError, ConnectorError):
    """A check or export request is refused; `field` names the parameter, `reason` says why."""


class ConfigError(FieldError, ConnectorError):
    """The connector is configured wrongly; `field` names the setting (and CLI option)."""


class ReplicaError(ConnectorError):
    """The local SQLite replica cannot be read or written."""


class BrokerError(ConnectorError):
    """The Kafka broker refused or could not be reached."""
