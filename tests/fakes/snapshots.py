"""Transactions over in-memory state: a copy is worked on and kept only on success."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from services.errors import DatabaseError

State = TypeVar("State")


class Snapshots(Generic[State]):
    """The committed state, and transactions on a deep copy of it: the copy replaces it
    when the transaction's block ends normally, and is dropped when it raises (PostgreSQL's
    rollback). Transactions run one at a time, which is at least as strict as the row
    locks the adapters take; reads outside a transaction see the last commit."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.commits = 0
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[State]:
        async with self._lock:
            work = copy.deepcopy(self.state)
            yield work  # an exception here leaves self.state as it was
            self.state = work
            self.commits += 1


class PgSequence:
    """A PostgreSQL sequence: numbers taken in a rolled-back transaction are not reused."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)

    def next(self) -> int:
        return next(self._numbers)


def unique(table: str, key: object, taken: bool) -> None:
    """Refuse a second row under a unique key, as the adapters report asyncpg's refusal."""
    if taken:
        raise DatabaseError(f"duplicate key value violates unique constraint on {table}: {key}")


def as_json(value: Any) -> Any:
    """What a jsonb column gives back: a value that is not JSON fails as it would there."""
    return json.loads(json.dumps(value))
