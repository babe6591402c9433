"""The replica's queues of what to send back (acks, dead letters, webhook notices), and the
quarantine where what was refused for good is set aside."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from connectors.subscriber.emit import Outgoing
from connectors.subscriber.errors import ReplicaError
from connectors.subscriber.replica_schema import QUARANTINES
from connectors.subscriber.replica_store import ReplicaStore


@dataclass(frozen=True)
class PendingWebhook:
    seq: int
    body: str
    attempts: int


class ReplicaQueues(ReplicaStore):
    """What waits to be sent, and what was set aside."""

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
