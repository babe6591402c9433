"""What the subscriber sends back: signed acknowledgements and dead letters, and webhook
notices. Built here (CPU only) and queued by the replica in the transaction that applies
the record, so a crash between the two can neither lose nor invent one.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from connectors.subscriber.records import RawRecord, Refused, Upsert
from events.codec import encode_signed
from events.errors import EventError
from events.models import BlocklistEntry, DeadLetter, MeasureApplied
from events.signing import Signer
from events.topics import ACKNOWLEDGEMENTS, DEAD_LETTERS

log = logging.getLogger(__name__)

# The namespace of the core's derived event ids: an id fixed by what the event is about,
# so a replay or a retry cannot emit a second event for the same fact.
EVENT_IDS = uuid.UUID("6f1c1a52-5d1f-4b8e-9a57-7265646c696e")

Change = Literal["blocked", "lifted"]


def derived_id(identity: str) -> str:
    return str(uuid.uuid5(EVENT_IDS, identity))


def where(record: RawRecord) -> str:
    return f"{record.topic}:{record.partition}:{record.offset}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A signed event waiting in the replica's outbox for the broker to confirm it."""

    event_id: str
    kind: Literal["ack", "dead_letter"]
    topic: str
    key: bytes
    value: bytes


class Emitter:
    """Builds one subscriber's outgoing events; without a signing key it builds none."""

    def __init__(self, name: str, signer: Signer | None, *, webhooks: bool) -> None:
        self.name = name
        self.source = f"/authorities/{name}"
        self._signer = signer
        self.webhooks = webhooks

    @property
    def signs(self) -> bool:
        return self._signer is not None

    def ack(self, item: Upsert, case_id: str, applied_at: datetime) -> Outgoing | None:
        """`MeasureApplied` for a case newly behind a block, keyed and identified by case."""
        if self._signer is None:
            return None
        try:
            payload = MeasureApplied(
                case_id=case_id,
                department=item.entry.department,
                measure=item.measure,
                reference=f"{self.name}:{where(item.record)}",
                applied_at=applied_at,
                caused_by=item.event_id,
            )
            event_id = derived_id(f"{self.name}:applied:{item.measure}:{case_id}")
            envelope, raw = encode_signed(
                payload, self._signer, source=self.source, subject=case_id, event_id=event_id
            )
        except (ValidationError, EventError) as exc:
            # The block is applied all the same: refusing it over an ack would fail open.
            log.error("no acknowledgement for %s at %s: %s", case_id, where(item.record), exc)
            return None
        return Outgoing(envelope.id, "ack", ACKNOWLEDGEMENTS.name, case_id.encode(), raw)

    def dead_letter(self, item: Refused) -> Outgoing | None:
        """A signed `DeadLetter` with the reason and the original bytes; logged if unsigned."""
        record = item.record
        if self._signer is None:
            log.warning(
                "refused %s (%s): %s; no signing key, so no dead letter is sent",
                where(record),
                item.reason,
                item.detail,
            )
            return None
        letter = DeadLetter.for_message(
            consumer=self.name,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=item.reason,
            detail=item.detail,
            original=record.value or b"",
        )
        event_id = derived_id(f"{self.name}:dead:{where(record)}")
        envelope, raw = encode_signed(
            letter, self._signer, source=self.source, subject=self.name, event_id=event_id
        )
        return Outgoing(envelope.id, "dead_letter", DEAD_LETTERS.name, self.name.encode(), raw)

    def webhook(
        self,
        change: Change,
        measure: str,
        digest: bytes,
        record: RawRecord,
        entry: BlocklistEntry | None,
    ) -> str | None:
        """The JSON notice of one change: masked data and the subject hash, never an ID.

        A `blocked` notice names the target and each case with its rule, facts and (for a
        measure held against sites) its site hashes, never the site itself."""
        if not self.webhooks:
            return None
        body: dict[str, Any] = {
            "id": derived_id(f"{self.name}:webhook:{where(record)}"),
            "change": change,
            "subscriber": self.name,
            "measure": measure,
            "subject_hash": digest.hex(),
            "source": where(record),
        }
        if entry is not None:
            body.update(
                target=entry.target.value,
                subject_kind=entry.subject_kind,
                masked_name=entry.masked_name,
                department=entry.department,
                cases=[case.model_dump(mode="json") for case in entry.cases],
            )
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
