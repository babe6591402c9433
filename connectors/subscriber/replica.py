"""The local replica: one SQLite file holding the blocks, where the topic was read up to,
the builder's last heartbeat per partition, and the queues of what to send back.

A polled batch is applied in ONE transaction together with its offsets and the acks,
dead letters and webhook notices it causes, so after a crash the replica resumes exactly
where its data ends: nothing is replayed twice into it and nothing is skipped. WAL mode
lets the checks, the CLI and the senders read while the consumer writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from connectors.subscriber.errors import ConfigError, ReplicaError
from connectors.subscriber.export import ExportRow
from connectors.subscriber.replica_feed import Applied, ReplicaFeed
from connectors.subscriber.replica_queues import PendingWebhook, ReplicaQueues
from connectors.subscriber.replica_schema import (
    BUSY_TIMEOUT_S,
    CACHE_KIB,
    QUARANTINES,
    SCHEMA,
    SCHEMA_VERSION,
    columns,
    upgrade_in_place,
)
from connectors.subscriber.results import BlockCase, Blocked
from events.blocklist_head import EMPTY_DIGEST
from events.catalogue import Target

# The replica by concern: feeding (replica_feed), queues (replica_queues), tables
# (replica_schema); `Replica` puts them together, so callers import it from here.
__all__ = [
    "QUARANTINES",
    "SCHEMA_VERSION",
    "Applied",
    "PartitionState",
    "PendingWebhook",
    "Replica",
]


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


def _reason_to_rebuild(meta: dict[str, str], key_id: str) -> str | None:
    """Why a replica must be emptied and read again from the start, if it must."""
    if meta.get("key_id") not in (None, key_id):
        return "the replica was built under another subject key"
    if meta.get("schema_version") not in (None, SCHEMA_VERSION):
        return (
            f"the replica was written by an older connector (schema "
            f"{meta['schema_version']}, now {SCHEMA_VERSION})"
        )
    return None


class Replica(ReplicaFeed, ReplicaQueues):
    """One connection to the replica file; use it from the thread that opened it."""

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
                db.executescript(SCHEMA)
            elif not db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
            ).fetchone():
                db.close()
                raise ConfigError("replica", f"{path} is not a subscriber replica")
            elif "target" not in columns(db, "entries"):
                db.close()
                raise ConfigError(
                    "replica",
                    f"{path} was written by an older connector (schema 1): start the daemon "
                    "(redline-connector run) once, which reads the lists again from the start",
                )
        except sqlite3.Error as exc:
            raise ReplicaError(f"cannot open the replica {path}: {exc}") from exc
        return cls(path, db)

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
        try:
            self._db.execute("BEGIN IMMEDIATE")
            meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
            upgrade_in_place(self._db)
            reset = _reason_to_rebuild(meta, key_id)
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
