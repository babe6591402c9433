"""The local replica: one SQLite file holding the blocks, where the topic was read up to,
the builder's last heartbeat per partition, and the queues of what to send back.

A polled batch is applied in ONE transaction together with its offsets and the acks,
dead letters and webhook notices it causes, so after a crash the replica resumes exactly
where its data ends: nothing is replayed twice into it and nothing is skipped. WAL mode
lets the checks, the CLI and the senders read while the consumer writes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.subscriber.emit import Emitter, Outgoing
from connectors.subscriber.errors import ConfigError, ReplicaError
from connectors.subscriber.export import ExportRow
from connectors.subscriber.freshness import effective_as_of
from connectors.subscriber.records import Heartbeat, Item, Refused, Remove, Tombstone, Upsert
from connectors.subscriber.results import BlockCase, Blocked
from events.blocklist_head import EMPTY_DIGEST, item_digest, xor
from events.catalogue import Target

# 2: entries record their target, and their cases the rule, facts and site hashes (#16).
# 3: list versions, signed lifts and each partition's head (#18): read again from the start.
SCHEMA_VERSION = "3"
BUSY_TIMEOUT_S = 10.0
CACHE_KIB = 64 * 1024

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    measure TEXT NOT NULL,
    subject BLOB NOT NULL,
    subject_kind TEXT NOT NULL,
    masked_name TEXT NOT NULL,
    department TEXT NOT NULL,
    cases TEXT NOT NULL,
    event_id TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT 'subject',
    kafka_partition INTEGER NOT NULL,
    kafka_offset INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (measure, subject)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lifts (
    measure TEXT NOT NULL,
    subject BLOB NOT NULL,
    version INTEGER NOT NULL,
    kafka_partition INTEGER NOT NULL,
    PRIMARY KEY (measure, subject)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_partition ON entries (measure, kafka_partition);
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    measure TEXT NOT NULL,
    next_offset INTEGER,
    heartbeat_at REAL,
    heartbeat_as_of TEXT,
    held_entries INTEGER NOT NULL DEFAULT 0,
    held_digest TEXT NOT NULL DEFAULT '{EMPTY_DIGEST}',
    PRIMARY KEY (topic, kafka_partition)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    queued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS outbox_quarantine (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    queued_at REAL NOT NULL,
    quarantined_at REAL NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks_quarantine (
    seq INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL,
    quarantined_at REAL NOT NULL,
    reason TEXT NOT NULL
);
"""
# What the broker or the receiver refused for good (#18) is moved to the *_quarantine
# tables, keeping its seq, instead of blocking its queue for ever: never deleted, never
# sent again until released (Replica.release_quarantined, which puts it back in place).
# Created by the daemon's open (CREATE TABLE IF NOT EXISTS), so older replicas gain them.
QUARANTINES = {
    "events": ("outbox", "outbox_quarantine"),
    "webhooks": ("webhooks", "webhooks_quarantine"),
}

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What one applied batch changed, for the in-memory index and the counters."""

    records: int = 0
    upserts: int = 0
    removals: int = 0
    heartbeats: int = 0
    refused: int = 0
    queued_events: int = 0
    queued_webhooks: int = 0
    # Unsigned tombstones ignored, replayed (older) records ignored, and the partitions
    # whose signed head the replica does not match (measure, topic, partition).
    tombstones: int = 0
    replayed: int = 0
    diverged: list[tuple[str, str, int]] = field(default_factory=list)
    # (measure, subject, listed) in the order the records came: an entry, its tombstone
    # and a new entry may share one poll, and only the last of them holds.
    changes: list[tuple[str, bytes, bool]] = field(default_factory=list)
    vouched: list[tuple[str, int, float]] = field(default_factory=list)


@dataclass(frozen=True)
class PartitionState:
    measure: str
    topic: str
    partition: int
    next_offset: int | None
    heartbeat_at: float | None
    heartbeat_as_of: str | None
    held_entries: int = 0
    held_digest: str = EMPTY_DIGEST


@dataclass(frozen=True)
class PendingWebhook:
    seq: int
    body: str
    attempts: int


def _cases_json(item: Upsert) -> str:
    cases = [case.model_dump(mode="json") for case in item.entry.cases]
    return json.dumps(cases, ensure_ascii=False, separators=(",", ":"))


def _block_cases(cases_json: str) -> tuple[BlockCase, ...]:
    return tuple(
        BlockCase(
            c["case_id"],
            c["legal_basis"],
            datetime.fromisoformat(c["since"]),
            c.get("rule", ""),
            tuple(c.get("facts", ())),
            tuple(c.get("site_hashes", ())),
        )
        for c in json.loads(cases_json)
    )


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


class Replica:
    """One connection to the replica file; use it from the thread that opened it."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> Replica:
        """Open (and with `create`, make) the replica; a missing file is a config error."""
        if not create and not path.exists():
            raise ConfigError(
                "replica", f"no replica at {path}: start the daemon (redline-connector run) first"
            )
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True
            )
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a power cut may lose the last batches, never consistency;
            # their offsets are lost with them, so they are simply read again.
            db.execute("PRAGMA synchronous=NORMAL")
            # A million entries are ~100 MB of B-tree; without a larger page cache, random
            # subject hashes make every insert a page read.
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            if create:
                db.executescript(_SCHEMA)
            elif not db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone():
                db.close()
                raise ConfigError("replica", f"{path} is not a subscriber replica")
            elif "target" not in _columns(db, "entries"):
                db.close()
                raise ConfigError(
                    "replica",
                    f"{path} was written by an older connector (schema 1): start the daemon "
                    "(redline-connector run) once, which reads the lists again from the start",
                )
        except sqlite3.Error as exc:
            raise ReplicaError(f"cannot open the replica {path}: {exc}") from exc
        return cls(path, db)

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise ReplicaError(f"replica {self.path}: {exc}") from exc

    # -- set-up -----------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return dict(self._query("SELECT name, value FROM meta"))

    def set_meta(self, name: str, value: str) -> None:
        self._query("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def measures(self) -> tuple[str, ...]:
        """The measures the daemon that built this replica served."""
        stored = self.meta().get("measures")
        return tuple(json.loads(stored)) if stored else ()

    def initialise(
        self,
        name: str,
        key_id: str,
        measures: tuple[str, ...],
        partitions: dict[str, tuple[str, int]],
    ) -> str | None:
        """Record who the replica belongs to; forget data this subscriber may not hold.

        A replica built under another subject key cannot be looked up in, and one written
        by an older connector (schema 1) holds entries without their target and sites, and
        may have passed over entries it could not read then: either is emptied and rebuilt
        from the start of the topics. Returns why, when that happened. `partitions` maps
        each measure to its topic and partition count.
        """
        reset: str | None = None
        try:
            self._db.execute("BEGIN IMMEDIATE")
            meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
            if "target" not in _columns(self._db, "entries"):
                self._db.execute(
                    "ALTER TABLE entries ADD COLUMN target TEXT NOT NULL DEFAULT 'subject'"
                )
            self._upgrade_to_heads()
            if meta.get("key_id") not in (None, key_id):
                reset = "the replica was built under another subject key"
            elif meta.get("schema_version") not in (None, SCHEMA_VERSION):
                reset = (
                    f"the replica was written by an older connector (schema "
                    f"{meta['schema_version']}, now {SCHEMA_VERSION})"
                )
            if reset is not None:
                # What is queued to send stays: those acks and notices are still true.
                for table in ("entries", "partitions", "lifts"):
                    self._db.execute(f"DELETE FROM {table}")
            placeholders = ",".join("?" * len(measures))
            self._db.execute(f"DELETE FROM entries WHERE measure NOT IN ({placeholders})", measures)
            self._db.execute(f"DELETE FROM lifts WHERE measure NOT IN ({placeholders})", measures)
            self._db.execute(
                f"DELETE FROM partitions WHERE measure NOT IN ({placeholders})", measures
            )
            for measure, (topic, count) in partitions.items():
                self._db.executemany(
                    "INSERT OR IGNORE INTO partitions (topic, kafka_partition, measure) "
                    "VALUES (?, ?, ?)",
                    [(topic, p, measure) for p in range(count)],
                )
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                [
                    ("schema_version", SCHEMA_VERSION),
                    ("subscriber", name),
                    ("key_id", key_id),
                    ("measures", json.dumps(list(measures))),
                ],
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise ReplicaError(f"cannot initialise the replica {self.path}: {exc}") from exc
        return reset

    def _upgrade_to_heads(self) -> None:
        """Columns and tables of schema 3 on a replica written before (then emptied)."""
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS lifts (measure TEXT NOT NULL, subject BLOB NOT NULL, "
            "version INTEGER NOT NULL, kafka_partition INTEGER NOT NULL, "
            "PRIMARY KEY (measure, subject)) WITHOUT ROWID"
        )
        if "version" not in _columns(self._db, "entries"):
            self._db.execute("ALTER TABLE entries ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
        if "held_entries" not in _columns(self._db, "partitions"):
            self._db.execute(
                "ALTER TABLE partitions ADD COLUMN held_entries INTEGER NOT NULL DEFAULT 0"
            )
            self._db.execute(
                f"ALTER TABLE partitions ADD COLUMN held_digest TEXT NOT NULL "
                f"DEFAULT '{EMPTY_DIGEST}'"
            )

    def register_partitions(self, measure: str, topic: str, partitions: Iterable[int]) -> None:
        """Partitions the broker reports; a new one has no heartbeat, so it is stale."""
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO partitions (topic, kafka_partition, measure) "
                "VALUES (?, ?, ?)",
                [(topic, p, measure) for p in partitions],
            )
        except sqlite3.Error as exc:
            raise ReplicaError(f"replica {self.path}: {exc}") from exc

    def reset_partition(self, topic: str, partition: int) -> None:
        """Forget one partition's blocks, offset and heartbeat: it is read again from the
        start (the broker lost or truncated its log, so what we hold cannot be trusted)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT measure FROM partitions WHERE topic = ? AND kafka_partition = ?",
                (topic, partition),
            ).fetchone()
            if row is not None:
                for table in ("entries", "lifts"):
                    self._db.execute(
                        f"DELETE FROM {table} WHERE measure = ? AND kafka_partition = ?",
                        (row[0], partition),
                    )
            self._db.execute(
                "UPDATE partitions SET next_offset = NULL, heartbeat_at = NULL, "
                "heartbeat_as_of = NULL, held_entries = 0, held_digest = ? "
                "WHERE topic = ? AND kafka_partition = ?",
                (EMPTY_DIGEST, topic, partition),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise ReplicaError(f"cannot reset {topic}/{partition}: {exc}") from exc

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    # -- feeding ----------------------------------------------------------------------

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
        if not self._newer(item.measure, item.digest, item.version):
            applied.replayed += 1
            log.warning(
                "%s/%d@%d: an entry older than what the replica holds (a replay); ignored",
                item.record.topic,
                item.record.partition,
                item.record.offset,
            )
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
        if not self._newer(item.measure, item.digest, item.version):
            applied.replayed += 1
            log.warning(
                "%s/%d@%d: a lift older than what the replica holds (a replay); the block stays",
                item.record.topic,
                item.record.partition,
                item.record.offset,
            )
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

    def partitions(self) -> list[PartitionState]:
        rows = self._query(
            "SELECT measure, topic, kafka_partition, next_offset, heartbeat_at, heartbeat_as_of, "
            "held_entries, held_digest FROM partitions ORDER BY measure, kafka_partition"
        )
        return [PartitionState(*row) for row in rows]

    def members(self, measure: str) -> set[bytes]:
        """Every blocked subject digest of a measure, for the in-memory index."""
        try:
            cursor = self._db.execute("SELECT subject FROM entries WHERE measure = ?", (measure,))
            return {row[0] for row in cursor}
        except sqlite3.Error as exc:
            raise ReplicaError(f"replica {self.path}: {exc}") from exc

    def contains(self, measure: str, digest: bytes) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM entries WHERE measure = ? AND subject = ?", (measure, digest)
            )
        )

    def blocked(self, measure: str, digest: bytes) -> Blocked | None:
        rows = self._query(
            "SELECT target, subject_kind, masked_name, department, cases FROM entries "
            "WHERE measure = ? AND subject = ?",
            (measure, digest),
        )
        if not rows:
            return None
        target, kind, masked_name, department, cases = rows[0]
        return Blocked(
            measure,
            Target(target),
            digest.hex(),
            kind,
            masked_name,
            department,
            _block_cases(cases),
        )

    def counts(self) -> dict[str, int]:
        return dict(self._query("SELECT measure, count(*) FROM entries GROUP BY measure"))

    def export_rows(self, measure: str, batch: int = 5000) -> Iterator[ExportRow]:
        """The current list of one measure, ordered by subject hash, read in batches."""
        last = b""
        while True:
            rows = self._query(
                "SELECT subject, subject_kind, masked_name, cases, target FROM entries "
                "WHERE measure = ? AND subject > ? ORDER BY subject LIMIT ?",
                (measure, last, batch),
            )
            for subject, kind, masked_name, cases, target in rows:
                yield ExportRow.of(
                    measure,
                    subject.hex(),
                    kind,
                    masked_name,
                    _block_cases(cases),
                    target=Target(target),
                )
            if len(rows) < batch:
                return
            last = rows[-1][0]

    # -- queues -----------------------------------------------------------------------

    def queue_sizes(self) -> tuple[int, int]:
        """(events waiting for the broker, webhook notices waiting for the receiver)."""
        rows = self._query("SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM webhooks)")
        return rows[0][0], rows[0][1]

    def pending_events(self, limit: int) -> list[tuple[int, Outgoing]]:
        rows = self._query(
            "SELECT seq, event_id, kind, topic, key, value FROM outbox ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [
            (seq, Outgoing(eid, kind, topic, key, value))
            for seq, eid, kind, topic, key, value in rows
        ]

    def delete_events(self, seqs: Iterable[int]) -> None:
        try:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
        except sqlite3.Error as exc:
            raise ReplicaError(f"replica {self.path}: {exc}") from exc

    def pending_webhooks(self, limit: int) -> list[PendingWebhook]:
        rows = self._query(
            "SELECT seq, body, attempts FROM webhooks ORDER BY seq LIMIT ?", (limit,)
        )
        return [PendingWebhook(*row) for row in rows]

    def webhook_delivered(self, seq: int) -> None:
        self._query("DELETE FROM webhooks WHERE seq = ?", (seq,))

    def quarantine_event(self, seq: int, reason: str, now: float) -> None:
        """Move a queued event the broker refused for good out of the queue, with why."""
        self._move_aside(
            "INSERT OR REPLACE INTO outbox_quarantine (seq, event_id, kind, topic, key, value, "
            "queued_at, quarantined_at, reason) SELECT seq, event_id, kind, topic, key, value, "
            "queued_at, ?, ? FROM outbox WHERE seq = ?",
            "DELETE FROM outbox WHERE seq = ?",
            seq,
            reason,
            now,
        )

    def quarantine_webhook(self, seq: int, reason: str, now: float) -> None:
        """Move a notice the receiver refused for good (a 4xx) out of the queue, with why."""
        self._move_aside(
            "INSERT OR REPLACE INTO webhooks_quarantine (seq, body, queued_at, attempts, "
            "quarantined_at, reason) SELECT seq, body, queued_at, attempts + 1, ?, ? "
            "FROM webhooks WHERE seq = ?",
            "DELETE FROM webhooks WHERE seq = ?",
            seq,
            reason,
            now,
        )

    def _move_aside(self, copy: str, delete: str, seq: int, reason: str, now: float) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(copy, (now, reason[:1000], seq))
            self._db.execute(delete, (seq,))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise ReplicaError(f"cannot quarantine {seq} in {self.path}: {exc}") from exc

    def quarantined(self) -> dict[str, int]:
        """How many events and webhook notices are set aside now (0 for a replica written
        before quarantines existed and not opened by a daemon since)."""
        tables = {row[0] for row in self._query("SELECT name FROM sqlite_master")}
        return {
            queue: self._query(f"SELECT count(*) FROM {aside}")[0][0] if aside in tables else 0
            for queue, (_, aside) in QUARANTINES.items()
        }

    def release_quarantined(self, queue: str, seqs: Iterable[int] | None = None) -> int:
        """Put quarantined rows of a queue ("events" or "webhooks") back in it, at their
        old place in the order (all of them, or those `seqs`); returns how many."""
        table, aside = QUARANTINES[queue]
        columns = (
            "seq, event_id, kind, topic, key, value, queued_at"
            if queue == "events"
            else "seq, body, queued_at, attempts"
        )
        wanted = None if seqs is None else [(s,) for s in seqs]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("CREATE TEMP TABLE IF NOT EXISTS released (seq INTEGER PRIMARY KEY)")
            self._db.execute("DELETE FROM released")
            if wanted is None:
                self._db.execute(f"INSERT INTO released SELECT seq FROM {aside}")
            else:
                self._db.executemany("INSERT OR IGNORE INTO released VALUES (?)", wanted)
            cursor = self._db.execute(
                f"INSERT OR IGNORE INTO {table} ({columns}) SELECT {columns} FROM {aside} "
                "WHERE seq IN (SELECT seq FROM released)"
            )
            self._db.execute(f"DELETE FROM {aside} WHERE seq IN (SELECT seq FROM released)")
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise ReplicaError(f"cannot release quarantined {queue} in {self.path}: {exc}") from exc
        return cursor.rowcount

    def webhook_failed(self, seq: int, error: str) -> None:
        self._query(
            "UPDATE webhooks SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
            (error[:1000], seq),
        )
