"""What every consumer of the bus shares: raw messages, decoding them or dead-lettering
them with the reason and the original bytes, and signed events with derived ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from events.codec import EventDecoder, encode_signed
from events.envelope import Envelope
from events.errors import EventError, InvalidEvent, refusal_reason
from events.models import DeadLetter, Payload
from events.signing import Signer
from events.topics import DEAD_LETTERS
from services.outbox.ports import OutgoingEvent

_IDS = uuid.UUID("6f1c1a52-5d1f-4b8e-9a57-7265646c696e")  # namespace of derived event ids


@dataclass(frozen=True)
class RawMessage:
    """A message as the broker delivered it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class BatchCounts:
    """What the consumer skeleton counts of every batch (services.consumer.take): the
    redeliveries it skipped, and the reason of each dead letter. Each consumer's outcome
    adds its own counts."""

    duplicates: int = 0
    dead_letters: list[str] = field(default_factory=list)


def derived_id(identity: str) -> str:
    """An event id fixed by what the event is about, so a retry cannot emit a second one."""
    return str(uuid.uuid5(_IDS, identity))


@dataclass(frozen=True)
class Issuer:
    """Who signs what a consumer emits: its key and its CloudEvents source."""

    signer: Signer
    source: str

    def event(self, payload: Payload, *, topic: str, key: str, identity: str) -> OutgoingEvent:
        envelope, raw = encode_signed(
            payload, self.signer, source=self.source, subject=key, event_id=derived_id(identity)
        )
        return OutgoingEvent(envelope.id, envelope.type, topic, key, raw)


def decode_or_dead_letter(
    messages: Sequence[RawMessage], decode_event: EventDecoder, consumer: str, issuer: Issuer
) -> tuple[list[tuple[Envelope, Payload]], list[OutgoingEvent], list[str]]:
    """The trusted events of a batch, and a dead letter (with reason) for each other one."""
    decoded: list[tuple[Envelope, Payload]] = []
    dead: list[OutgoingEvent] = []
    reasons: list[str] = []
    for message in messages:
        try:
            if message.value is None:
                raise InvalidEvent("value", "empty message (no value)")
            decoded.append(decode_event(message.value))
        except EventError as exc:
            reason = refusal_reason(exc)
            dead.append(dead_letter(message, consumer, issuer, reason, str(exc)))
            reasons.append(reason)
    return decoded, dead, reasons


def dead_letter(
    message: RawMessage, consumer: str, issuer: Issuer, reason: str, detail: str
) -> OutgoingEvent:
    """A signed dead letter for `message`, its id fixed by where the message was, so a
    redelivery makes no second letter."""
    where = f"{message.topic}/{message.partition}/{message.offset}"
    letter = DeadLetter.for_message(
        consumer=consumer,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
        detail=detail,
        original=message.value or b"",
    )
    return issuer.event(
        letter, topic=DEAD_LETTERS.name, key=consumer, identity=f"{consumer}:dead:{where}"
    )


def first_deliveries(
    decoded: Sequence[tuple[Envelope, Payload]], consumed: set[str]
) -> tuple[list[tuple[Envelope, Payload]], int]:
    """The events not yet taken effect on (nor earlier in this batch), and how many were
    redeliveries: what makes at-least-once delivery take effect once."""
    seen = set(consumed)
    fresh: list[tuple[Envelope, Payload]] = []
    for envelope, payload in decoded:
        if envelope.id not in seen:
            seen.add(envelope.id)
            fresh.append((envelope, payload))
    return fresh, len(decoded) - len(fresh)


def case_id_of(payload: Payload) -> str:
    """The case an event is about ("" for one about none, such as a clue)."""
    case_id = getattr(payload, "case_id", "")
    return case_id if isinstance(case_id, str) else ""
