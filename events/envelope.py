"""CloudEvents 1.0 structured-mode JSON envelope around every payload.

The envelope is what travels and what is signed; `data` stays a plain dict here so that
an old version can be verified as sent and upcast afterwards.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NoReturn

import rfc8785
from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError

from events.errors import InvalidEvent, UnknownEventType, invalid_from_validation
from events.models import PAYLOAD_TYPES, Payload
from events.upcasting import upcast

MAX_EVENT_BYTES = 256 * 1024
SCHEMA_URN_PREFIX = "urn:redline:schema:"

# The CloudEvents Kafka protocol binding, structured content mode: the whole event is the
# record's value and this header names its format, so SDKs and header-routing tools can
# tell a CloudEvent without parsing it. Every record Redline produces with a value carries
# it; a tombstone (no value) carries no event and so no header. JSON is UTF-8 by RFC 8259.
KAFKA_CONTENT_TYPE = "application/cloudevents+json"
_KAFKA_HEADERS: tuple[tuple[str, bytes], ...] = (("content-type", KAFKA_CONTENT_TYPE.encode()),)


def kafka_headers(value: bytes | None) -> list[tuple[str, bytes]]:
    """The headers of a record with this value: the structured-mode content type, or none
    for a tombstone. A new list each time: clients may keep or extend what they are given."""
    return [] if value is None else list(_KAFKA_HEADERS)


_NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=512)]


def schema_uri(event_type: str) -> str:
    """The `dataschema` of an event type; the generated file is schemas/<type>.json."""
    return SCHEMA_URN_PREFIX + event_type


class Envelope(BaseModel):
    """A CloudEvent; `subject` is the Kafka key (the case id), `signature` covers the rest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: _NonEmpty
    source: _NonEmpty
    type: _NonEmpty
    subject: _NonEmpty
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: _NonEmpty
    data: dict[str, Any]
    signingkey: str | None = None
    signature: str | None = None


def _default_subject(payload: Payload) -> str | None:
    for name in ("case_id", "clue_id"):
        value = getattr(payload, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def new_event(
    payload: Payload,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """Wrap a payload; the subject defaults to its case id (or clue id) so a case stays ordered."""
    subject = subject or _default_subject(payload)
    if subject is None:
        raise InvalidEvent("subject", f"{payload.event_type} has no case id: give the subject")
    try:
        return Envelope(
            id=event_id or str(uuid.uuid4()),
            source=source,
            type=payload.event_type,
            subject=subject,
            time=time or datetime.now(UTC),
            dataschema=schema_uri(payload.event_type),
            data=payload.model_dump(mode="json"),
        )
    except ValidationError as exc:
        raise invalid_from_validation(exc, prefix="") from exc


def _wire_dict(envelope: Envelope) -> dict[str, Any]:
    return {k: v for k, v in envelope.model_dump(mode="json").items() if v is not None}


def encode(envelope: Envelope) -> bytes:
    """Compact UTF-8 JSON; absent optional attributes are omitted, as CloudEvents asks."""
    return json.dumps(_wire_dict(envelope), ensure_ascii=False, separators=(",", ":")).encode()


_MAX_SAFE_INTEGER = 2**53 - 1


def _needs_full_jcs(value: object) -> bool:
    """Floats (ES6 number form) and keys beyond the BMP (UTF-16 key order) are where RFC
    8785 and sorted compact JSON part ways; Redline's own events have neither."""
    if isinstance(value, float):
        return True
    if isinstance(value, int) and abs(value) > _MAX_SAFE_INTEGER:
        return True  # outside I-JSON: JCS refuses it, and so must we
    if isinstance(value, dict):
        return any(
            (not key.isascii() and any(ord(c) > 0xFFFF for c in key)) or _needs_full_jcs(item)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return any(_needs_full_jcs(item) for item in value)
    return False


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes. Without floats or astral keys, JCS is exactly sorted compact
    JSON with only the mandatory escapes, which the C encoder writes ten times faster."""
    if _needs_full_jcs(value):
        result: bytes = rfc8785.dumps(value)
        return result
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_bytes(envelope: Envelope) -> bytes:
    """RFC 8785 bytes of everything but the signature: identical in every language."""
    content = _wire_dict(envelope)
    content.pop("signature", None)
    return canonical_json(content)


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# No Redline event nests deeper than a few levels; a deeper one is hostile or broken, and
# would only reach recursion limits further in (validation, canonicalisation).
MAX_JSON_DEPTH = 32


def _too_deep(document: object) -> bool:
    level: list[object] = [document]
    for _ in range(MAX_JSON_DEPTH):
        children: list[object] = []
        for node in level:
            if isinstance(node, dict):
                children.extend(node.values())
            elif isinstance(node, list):
                children.extend(node)
        if not children:
            return False
        level = children
    return True


def decode_envelope(raw: bytes) -> Envelope:
    """Parse the envelope only; the payload is validated after the signature is checked."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent("size", f"{len(raw)} bytes exceeds the limit of {MAX_EVENT_BYTES}")
    try:
        document = json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidEvent("json", f"not a JSON document: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidEvent("json", f"expected a JSON object, got {type(document).__name__}")
    if _too_deep(document):
        raise InvalidEvent("json", f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        envelope = Envelope.model_validate(document)
    except ValidationError as exc:
        raise invalid_from_validation(exc, prefix="") from exc
    if envelope.type not in PAYLOAD_TYPES:
        raise UnknownEventType(envelope.type)
    return envelope


def payload_of(envelope: Envelope) -> Payload:
    """Validate `data` as sent, then upcast it to the current version and validate again."""
    model = PAYLOAD_TYPES.get(envelope.type)
    if model is None:
        raise UnknownEventType(envelope.type)
    try:
        payload = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise invalid_from_validation(exc, prefix="data") from exc
    current_type, data = upcast(envelope.type, payload.model_dump(mode="json"))
    if current_type == envelope.type:
        return payload
    try:
        return PAYLOAD_TYPES[current_type].model_validate(data)
    except ValidationError as exc:
        raise invalid_from_validation(exc, prefix="data") from exc
