"""The one exception family of the events package, so callers can catch it in one place."""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

SignatureReason = Literal[
    "malformed", "unknown_key", "issuer_not_allowed", "source_mismatch", "bad_signature"
]


class FieldError(Exception):
    """An error naming the field refused and why (`field: reason`): the house rule for bad
    input, mixed into each package's own family (events, services, the connector) beside
    that family's one base class."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class EventError(Exception):
    """Base of every error raised by the events package."""


class InvalidEvent(FieldError, EventError):
    """The event is refused; `field` says where, so a dead letter can say why."""


class UnknownEventType(InvalidEvent):
    """No model for this type: a consumer must not guess what it means."""

    def __init__(self, event_type: str) -> None:
        super().__init__("type", f"unknown event type {event_type!r}")
        self.event_type = event_type


class SignatureRejected(EventError):
    """The event is not proven to come from an issuer allowed to send it."""

    def __init__(self, reason: SignatureReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: SignatureReason = reason
        self.detail = detail


def refusal_reason(exc: EventError) -> str:
    """The reason code a refused event's dead letter carries: the same in the core's
    consumers and the connector's replica."""
    if isinstance(exc, SignatureRejected):
        return f"signature_{exc.reason}"
    if isinstance(exc, UnknownEventType):
        return "unknown_event_type"
    if isinstance(exc, InvalidEvent):
        return "invalid_event"
    return "undecodable"


_VALUE_ERROR_PREFIX = "Value error, "


def invalid_from_validation(exc: ValidationError, prefix: str = "data") -> InvalidEvent:
    """Name the first failing field as a dotted path, so the error is precise but short."""
    errors = exc.errors(include_url=False)
    if not errors:
        return InvalidEvent(prefix or "data", str(exc))
    first = errors[0]
    parts = [prefix] if prefix else []
    parts.extend(str(p) for p in first["loc"])
    field = ".".join(parts) or "data"
    reason = first["msg"].removeprefix(_VALUE_ERROR_PREFIX)
    return InvalidEvent(field=field, reason=reason)


class CatalogueError(EventError):
    """The measures catalogue is malformed, or names no such department."""


class UnknownDepartment(CatalogueError):
    """A department code the catalogue does not have (HTTP 404, CLI error)."""
