"""The one exception family of the subscriber connector, so a host application can catch
everything it raises in one place and tell bad input from a broken installation."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error the connector raises."""


class InvalidInput(ConnectorError):
    """A check or export request is refused; `field` names the parameter, `reason` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ConfigError(ConnectorError):
    """The connector is configured wrongly; `field` names the setting (and CLI option)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ReplicaError(ConnectorError):
    """The local SQLite replica cannot be read or written."""


class BrokerError(ConnectorError):
    """The Kafka broker refused or could not be reached."""
