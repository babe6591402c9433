"""The replica's connection and its meta table, shared by its feeding, queue and reading parts."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from connectors.subscriber.errors import ReplicaError


class ReplicaStore:
    """One connection to the replica file; use it from the thread that opened it."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise ReplicaError(f"replica {self.path}: {exc}") from exc

    # -- set-up -----------------------------------------------------------------------
    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def meta(self) -> dict[str, str]:
        return dict(self._query("SELECT name, value FROM meta"))

    def set_meta(self, name: str, value: str) -> None:
        self._query("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def measures(self) -> tuple[str, ...]:
        """The measures the daemon that built this replica served."""
        stored = self.meta().get("measures")
        return tuple(json.loads(stored)) if stored else ()
