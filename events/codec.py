"""The one entry point for consumers and producers: bytes in, checked payload out."""

from __future__ import annotations

from datetime import datetime

from events.envelope import (
    MAX_EVENT_BYTES,
    Envelope,
    decode_envelope,
    encode,
    new_event,
    payload_of,
)
from events.errors import InvalidEvent
from events.models import Payload
from events.signing import Signer, TrustStore, sign


def decode(raw: bytes, trust: TrustStore) -> tuple[Envelope, Payload]:
    """Size, envelope, signature over the event as sent, then upcast and validate the data."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent("size", f"{len(raw)} bytes exceeds the limit of {MAX_EVENT_BYTES}")
    envelope = decode_envelope(raw)
    trust.verify(envelope)
    return envelope, payload_of(envelope)


def encode_signed(
    payload: Payload,
    signer: Signer,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> tuple[Envelope, bytes]:
    """Wrap, sign and serialise a payload; the bytes are what goes to Kafka."""
    envelope = sign(
        new_event(payload, source=source, subject=subject, event_id=event_id, time=time), signer
    )
    return envelope, encode(envelope)
