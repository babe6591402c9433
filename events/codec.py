"""The one entry point for consumers and producers: bytes in, checked payload out."""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from functools import partial

from pydantic import ValidationError

from events.envelope import (
    MAX_EVENT_BYTES,
    Envelope,
    canonical_json,
    decode_envelope,
    new_event,
    payload_of,
)
from events.errors import InvalidEvent, invalid_from_validation
from events.models import PAYLOAD_TYPES, Payload
from events.signing import Signer, TrustStore
from events.upcasting import UPCASTERS


def decode(raw: bytes, trust: TrustStore) -> tuple[Envelope, Payload]:
    """Size, envelope, signature over the event as sent, then upcast and validate the data."""
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEvent("size", f"{len(raw)} bytes exceeds the limit of {MAX_EVENT_BYTES}")
    envelope = decode_envelope(raw)
    trust.verify(envelope)
    if envelope.type in UPCASTERS:
        return envelope, payload_of(envelope)
    # A current type: `payload_of` would validate, dump and find nothing to upcast; one
    # validation gives the same payload (decode_envelope has refused unknown types).
    try:
        return envelope, PAYLOAD_TYPES[envelope.type].model_validate(envelope.data)
    except ValidationError as exc:
        raise invalid_from_validation(exc, prefix="data") from exc


EventDecoder = Callable[[bytes], tuple[Envelope, Payload]]


def decoder(trust: TrustStore) -> EventDecoder:
    """`decode` under `trust`: what a consumer's handler is given."""
    return partial(decode, trust=trust)


class DecodedOnce:
    """`decode` under one trust store, each distinct message once for every consumer of a
    process (a department host's departments all read the same events within seconds).

    Keyed by the message's exact bytes, so an answer is only ever reused for the very bytes
    it was checked on: a forged event that copies a valid signature onto other content is
    other bytes, decoded and refused afresh. Decoding is pure and the models are frozen, so
    sharing the result is sharing a value. Only successes are kept, in a bounded LRU."""

    def __init__(self, trust: TrustStore, *, size: int) -> None:
        self._trust = trust
        self._size = size
        self._decoded: OrderedDict[bytes, tuple[Envelope, Payload]] = OrderedDict()
        self.hits = 0

    def __call__(self, raw: bytes) -> tuple[Envelope, Payload]:
        found = self._decoded.get(raw)
        if found is not None:
            self._decoded.move_to_end(raw)
            self.hits += 1
            return found
        decoded = self._decoded[raw] = decode(raw, self._trust)
        while len(self._decoded) > self._size:
            self._decoded.popitem(last=False)
        return decoded


def encode_signed(
    payload: Payload,
    signer: Signer,
    *,
    source: str,
    subject: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> tuple[Envelope, bytes]:
    """Wrap, sign and serialise a payload; the bytes are what goes to Kafka.

    The same bytes as `encode(sign(new_event(...)))`, from one dump of the envelope
    instead of four: a department signs one acknowledgement per event it applies."""
    envelope = new_event(payload, source=source, subject=subject, event_id=event_id, time=time)
    wire = {k: v for k, v in envelope.model_dump(mode="json").items() if v is not None}
    wire.pop("signature", None)
    wire["signingkey"] = signer.key_id
    signature = base64.b64encode(signer.sign_bytes(canonical_json(wire))).decode("ascii")
    wire["signature"] = signature
    signed = envelope.model_copy(update={"signingkey": signer.key_id, "signature": signature})
    return signed, json.dumps(wire, ensure_ascii=False, separators=(",", ":")).encode()
