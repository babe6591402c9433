"""Feeding the replica: a polled batch applied, with its offsets and what it causes, in one
transaction, so after a crash it resumes exactly where its data ends."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from connectors.subscriber.emit import Emitter, Outgoing
from connectors.subscriber.errors import ReplicaError
from connectors.subscriber.freshness import effective_as_of
from connectors.subscriber.records import (
    Heartbeat,
    Item,
    RecordCounts,
    Refused,
    Remove,
    Tombstone,
    Upsert,
)
from connectors.subscriber.replica_store import ReplicaStore
from events.blocklist_head import item_digest, xor

# The replica's logger, as before the split, so a logging setup naming it still applies.
log = logging.getLogger("connectors.subscriber.replica")


@dataclass
class Applied(RecordCounts):
    """What one applied batch changed, for the in-memory index and the counters."""

    upserts: int = 0
    removals: int = 0
    heartbeats: int = 0
    queued_events: int = 0
    queued_webhooks: int = 0
    # The partitions whose signed head the replica does not match (measure, topic, partition).
    diverged: list[tuple[str, str, int]] = field(default_factory=list)
    # (measure, subject, listed) in the order the records came: an entry, its tombstone
    # and a new entry may share one poll, and only the last of them holds.
    changes: list[tuple[str, bytes, bool]] = field(default_factory=list)
    vouched: list[tuple[str, int, float]] = field(default_factory=list)


def _cases_json(item: Upsert) -> str:
    cases = [case.model_dump(mode="json") for case in item.entry.cases]
    return json.dumps(cases, ensure_ascii=False, separators=(",", ":"))


class ReplicaFeed(ReplicaStore):
    """Applying polled records: entries, lifts, heartbeats and refusals."""

    def apply(self, items: Iterable[Item], emitter: Emitter, now: float) -> Applied:
        """Apply a polled batch, its offsets and what it causes, in one transaction."""
        applied = Applied()
        next_offsets: dict[tuple[str, int], int] = {}
        try:
            self._db.execute("BEGIN IMMEDIATE")
            for item in items:
                record = item.record
                where = (record.topic, record.partition)
                next_offsets[where] = max(next_offsets.get(where, 0), record.offset + 1)
                applied.records += 1
                if isinstance(item, Upsert):
                    self._upsert(item, emitter, now, applied)
                elif isinstance(item, Remove):
                    self._remove(item, emitter, now, applied)
                elif isinstance(item, Tombstone):
                    self._ignore_tombstone(item, applied)
                elif isinstance(item, Heartbeat):
                    self._heartbeat(item, now, applied)
                else:
                    self._refuse(item, emitter, now, applied)
            self._db.executemany(
                "UPDATE partitions SET next_offset = ? WHERE topic = ? AND kafka_partition = ?",
                [(offset, topic, p) for (topic, p), offset in next_offsets.items()],
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise ReplicaError(f"cannot apply a batch to {self.path}: {exc}") from exc
        except BaseException:
            self._rollback()
            raise
        return applied

    def _newer(self, measure: str, digest: bytes, version: int) -> bool:
        """Whether a record of this version is newer than any entry or lift held for the
        subject: an older one is a replay (or a redelivery), and changes nothing."""
        row = self._db.execute(
            "SELECT max(coalesce((SELECT version FROM entries WHERE measure = ?1 AND "
            "subject = ?2), -1), coalesce((SELECT version FROM lifts WHERE measure = ?1 AND "
            "subject = ?2), -1))",
            (measure, digest),
        ).fetchone()
        return bool(version > row[0] or (version == 0 and row[0] <= 0))

    def _replayed(self, item: Upsert | Remove, applied: Applied, kind: str, outcome: str) -> bool:
        """Whether `item` is no newer than what the replica holds (a replay): then it is
        counted and logged (`kind` of record, `outcome` for it) and must change nothing."""
        if self._newer(item.measure, item.digest, item.version):
            return False
        applied.replayed += 1
        log.warning(
            "%s/%d@%d: %s older than what the replica holds (a replay); %s",
            item.record.topic,
            item.record.partition,
            item.record.offset,
            kind,
            outcome,
        )
        return True

    def _hold(self, topic: str, partition: int, subject: bytes, version: int, delta: int) -> None:
        """Add (`delta` 1) or remove (-1) one entry in its partition's head; the digest
        changes the same way both times (XOR)."""
        row = self._db.execute(
            "SELECT held_digest FROM partitions WHERE topic = ? AND kafka_partition = ?",
            (topic, partition),
        ).fetchone()
        if row is None:
            return
        self._db.execute(
            "UPDATE partitions SET held_entries = held_entries + ?, held_digest = ? "
            "WHERE topic = ? AND kafka_partition = ?",
            (delta, xor(row[0], item_digest(subject.hex(), version)), topic, partition),
        )

    def _upsert(self, item: Upsert, emitter: Emitter, now: float, applied: Applied) -> None:
        row = self._db.execute(
            "SELECT cases, event_id, version, kafka_partition FROM entries "
            "WHERE measure = ? AND subject = ?",
            (item.measure, item.digest),
        ).fetchone()
        if row is not None and row[1] == item.event_id:
            return  # the same entry delivered again
        if self._replayed(item, applied, "an entry", "ignored"):
            return
        entry, record = item.entry, item.record
        if row is not None:
            self._hold(record.topic, row[3], item.digest, row[2], -1)
        self._hold(record.topic, record.partition, item.digest, item.version, 1)
        self._db.execute(
            "DELETE FROM lifts WHERE measure = ? AND subject = ?", (item.measure, item.digest)
        )
        self._db.execute(
            "INSERT INTO entries (measure, subject, subject_kind, masked_name, department, "
            "cases, event_id, target, kafka_partition, kafka_offset, version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (measure, subject) DO UPDATE SET subject_kind = excluded.subject_kind, "
            "masked_name = excluded.masked_name, department = excluded.department, "
            "cases = excluded.cases, event_id = excluded.event_id, target = excluded.target, "
            "kafka_partition = excluded.kafka_partition, kafka_offset = excluded.kafka_offset, "
            "version = excluded.version",
            (
                item.measure,
                item.digest,
                entry.subject_kind,
                entry.masked_name,
                entry.department,
                _cases_json(item),
                item.event_id,
                entry.target.value,
                record.partition,
                record.offset,
                item.version,
            ),
        )
        applied.upserts += 1
        if row is None:
            applied.changes.append((item.measure, item.digest, True))
        known = {case["case_id"] for case in json.loads(row[0])} if row is not None else set()
        applied_at = datetime.fromtimestamp(now, UTC)
        for case in entry.cases:
            if case.case_id not in known:
                self._queue(emitter.ack(item, case.case_id, applied_at), now, applied)
        self._notify(
            emitter.webhook("blocked", item.measure, item.digest, record, entry), now, applied
        )

    def _remove(self, item: Remove, emitter: Emitter, now: float, applied: Applied) -> None:
        if self._replayed(item, applied, "a lift", "the block stays"):
            return
        row = self._db.execute(
            "DELETE FROM entries WHERE measure = ? AND subject = ? "
            "RETURNING version, kafka_partition",
            (item.measure, item.digest),
        ).fetchone()
        self._db.execute(
            "INSERT OR REPLACE INTO lifts (measure, subject, version, kafka_partition) "
            "VALUES (?, ?, ?, ?)",
            (item.measure, item.digest, item.version, item.record.partition),
        )
        if row is not None:
            self._hold(item.record.topic, row[1], item.digest, row[0], -1)
            applied.removals += 1
            applied.changes.append((item.measure, item.digest, False))
            self._notify(
                emitter.webhook("lifted", item.measure, item.digest, item.record, None),
                now,
                applied,
            )

    def _ignore_tombstone(self, item: Tombstone, applied: Applied) -> None:
        """Anyone who can write the topic can write a tombstone: it lifts nothing."""
        applied.tombstones += 1
        log.warning(
            "%s/%d@%d: an unsigned tombstone for a subject key; ignored, the block stays "
            "(only a signed blocklist.lifted record lifts)",
            item.record.topic,
            item.record.partition,
            item.record.offset,
        )

    def _heartbeat(self, item: Heartbeat, now: float, applied: Applied) -> None:
        vouched = effective_as_of(item.as_of, now)
        record = item.record
        held = self._db.execute(
            "SELECT held_entries, held_digest FROM partitions "
            "WHERE topic = ? AND kafka_partition = ?",
            (record.topic, record.partition),
        ).fetchone()
        if held is None or (held[0], held[1]) != (item.entries, item.digest):
            # The replica is not the list the builder signed: it lost, missed or was fed
            # something. Vouch for nothing (stale at once) until a heartbeat matches.
            log.warning(
                "%s/%d: the replica holds %s entries, the builder's signed head says %d: "
                "diverged from the list, answering stale",
                record.topic,
                record.partition,
                None if held is None else held[0],
                item.entries,
            )
            self._db.execute(
                "UPDATE partitions SET heartbeat_at = NULL, heartbeat_as_of = NULL "
                "WHERE topic = ? AND kafka_partition = ?",
                (record.topic, record.partition),
            )
            # Only a partition's last heartbeat in the batch counts, as in the file.
            applied.vouched = [
                v for v in applied.vouched if v[:2] != (item.measure, record.partition)
            ]
            applied.diverged.append((item.measure, record.topic, record.partition))
            return
        if vouched is None:
            log.warning(
                "%s/%d: a heartbeat from %.1f s in the future vouches for nothing; "
                "check the builder's clock",
                record.topic,
                record.partition,
                item.as_of - now,
            )
            return
        self._db.execute(
            "UPDATE partitions SET heartbeat_at = ?, heartbeat_as_of = ? "
            "WHERE topic = ? AND kafka_partition = ?",
            (
                vouched,
                datetime.fromtimestamp(item.as_of, UTC).isoformat(),
                record.topic,
                record.partition,
            ),
        )
        applied.heartbeats += 1
        applied.diverged = [
            d for d in applied.diverged if d[::2] != (item.measure, record.partition)
        ]
        applied.vouched.append((item.measure, record.partition, vouched))

    def _refuse(self, item: Refused, emitter: Emitter, now: float, applied: Applied) -> None:
        applied.refused += 1
        self._queue(emitter.dead_letter(item), now, applied)

    def _queue(self, event: Outgoing | None, now: float, applied: Applied) -> None:
        if event is None:
            return
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO outbox (event_id, kind, topic, key, value, queued_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (event.event_id, event.kind, event.topic, event.key, event.value, now),
        )
        applied.queued_events += cursor.rowcount

    def _notify(self, body: str | None, now: float, applied: Applied) -> None:
        if body is None:
            return
        self._db.execute("INSERT INTO webhooks (body, queued_at) VALUES (?, ?)", (body, now))
        applied.queued_webhooks += 1

    # -- reading ----------------------------------------------------------------------
