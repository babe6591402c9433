"""From a blocklist record as the broker delivered it to what it means for the replica.

Decoding verifies the builder's signature (`events.codec.decode`) and then the contract
of the topic: the key is the subject hash the entry names, the entry is of this topic's
measure and hashed under this subscriber's subject key, a heartbeat vouches for the
partition it sits in and carries that partition's signed head. A lift is believed only
as a signed `blocklist.lifted` record: a bare tombstone (null value) is unsigned, so
anyone able to write the topic could write one; it is ignored (the block stays) and
counted. Anything else is refused with a reason for the dead-letter topic.
CPU only, no I/O, so it is tested without a broker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from events.codec import decode
from events.errors import EventError, refusal_reason
from events.models import BlocklistEntry, BlocklistHeartbeat, BlocklistLifted
from events.signing import TrustStore
from events.topics import HEARTBEAT_KEY

_SUBJECT_HASH = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class RecordCounts:
    """Records read and refused, and unsigned tombstones and replayed (older) records
    ignored: counted per applied batch, and summed over the feed's life for health."""

    records: int = 0
    refused: int = 0
    tombstones: int = 0
    replayed: int = 0

    def add(self, batch: RecordCounts) -> None:
        self.records += batch.records
        self.refused += batch.refused
        self.tombstones += batch.tombstones
        self.replayed += batch.replayed


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as the broker delivered it (what any Kafka client yields)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class Upsert:
    """An entry replacing whatever the replica held for this subject and measure."""

    record: RawRecord
    measure: str
    digest: bytes
    entry: BlocklistEntry
    event_id: str

    @property
    def version(self) -> int:
        return self.entry.version


@dataclass(frozen=True, slots=True)
class Remove:
    """A signed lift: the subject is no longer blocked under this measure."""

    record: RawRecord
    measure: str
    digest: bytes
    version: int


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A null value under a subject key: unsigned, so it lifts nothing (ignored, counted)."""

    record: RawRecord
    measure: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The builder vouches for this partition up to `as_of` (epoch seconds)."""

    record: RawRecord
    measure: str
    as_of: float
    entries: int
    digest: str


@dataclass(frozen=True, slots=True)
class Refused:
    """A record the replica will not apply; `reason` is a short code, `detail` the why."""

    record: RawRecord
    measure: str
    reason: str
    detail: str


Item = Upsert | Remove | Tombstone | Heartbeat | Refused


class RecordReader:
    """Interprets the records of one subscriber's blocklist topics."""

    def __init__(self, trust: TrustStore, key_ids: Mapping[str, str]) -> None:
        """`key_ids`: the id of each served measure's subject key."""
        self._trust = trust
        self._key_ids = dict(key_ids)

    def read(self, record: RawRecord, measure: str) -> Item:
        """What `record`, read from `measure`'s topic, means; never raises for bad data."""
        try:
            return self._read(record, measure)
        except EventError as exc:
            return Refused(record, measure, refusal_reason(exc), str(exc))

    def _read(self, record: RawRecord, measure: str) -> Item:
        if record.key is None:
            return Refused(record, measure, "invalid_key", "a blocklist record needs a key")
        key = record.key.decode("ascii", errors="replace")
        if key == HEARTBEAT_KEY:
            return self._heartbeat(record, measure)
        if not _SUBJECT_HASH.fullmatch(key):
            return Refused(
                record, measure, "invalid_key", f"key {key[:80]!r} is not a subject hash"
            )
        digest = bytes.fromhex(key)
        if record.value is None:
            return Tombstone(record, measure, digest)
        return self._entry(record, measure, key, digest, record.value)

    def _entry(
        self, record: RawRecord, measure: str, key: str, digest: bytes, value: bytes
    ) -> Item:
        envelope, payload = decode(value, self._trust)
        problem: tuple[str, str] | None = None
        held = self._key_ids[measure]
        if not isinstance(payload, BlocklistEntry | BlocklistLifted):
            problem = ("wrong_event_type", f"{envelope.type} under a subject key")
        elif payload.measure != measure:
            problem = ("wrong_measure", f"record of {payload.measure} on {record.topic}")
        elif payload.key_id != held:
            problem = (
                "wrong_subject_key",
                f"hashed under subject key {payload.key_id}, this subscriber holds {held}",
            )
        elif payload.subject_hash != key:
            problem = ("key_mismatch", "the record key is not the record's subject hash")
        if problem is not None:
            return Refused(record, measure, *problem)
        if isinstance(payload, BlocklistLifted):
            return Remove(record, measure, digest, payload.version)
        if not isinstance(payload, BlocklistEntry):  # pragma: no cover - refused above
            return Refused(record, measure, "wrong_event_type", envelope.type)
        return Upsert(record, measure, digest, payload, envelope.id)

    def _heartbeat(self, record: RawRecord, measure: str) -> Item:
        if record.value is None:
            return Refused(record, measure, "invalid_event", "a heartbeat record without value")
        envelope, payload = decode(record.value, self._trust)
        if not isinstance(payload, BlocklistHeartbeat):
            return Refused(
                record, measure, "wrong_event_type", f"{envelope.type} under the heartbeat key"
            )
        if payload.measure != measure or payload.partition != record.partition:
            return Refused(
                record,
                measure,
                "wrong_partition",
                f"heartbeat of {payload.measure}/{payload.partition} on "
                f"{record.topic}/{record.partition}",
            )
        held = self._key_ids[measure]
        if payload.key_id != held:
            # A builder hashing under another key vouches for a list we cannot look up in.
            return Refused(
                record,
                measure,
                "wrong_subject_key",
                f"builder hashes under {payload.key_id}, this subscriber holds {held}",
            )
        if payload.entries is None or payload.digest is None:
            # Without a list head the replica cannot tell that it holds the list.
            return Refused(record, measure, "no_list_head", "a heartbeat without a list head")
        return Heartbeat(
            record, measure, payload.as_of.timestamp(), payload.entries, payload.digest
        )
