"""Transactions over in-memory state (a copy is worked on and kept only on success), and
the rules of PostgreSQL's tables the fakes share: sequences, unique and foreign keys, an
outbox that keeps each event id once."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from services.errors import DatabaseError
from services.outbox.ports import OutgoingEvent

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


class Committed(Generic[State]):
    """A fake store's tables: `state` is what is committed, `tables.begin()` a transaction."""

    def __init__(self, state: State) -> None:
        self.tables = Snapshots(state)

    @property
    def state(self) -> State:
        return self.tables.state


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


def foreign_key(table: str, key: object, present: bool) -> None:
    """Refuse a row whose foreign key names no row of `table`, as the adapters report it."""
    if not present:
        raise DatabaseError(f"insert or update violates foreign key constraint to {table}: {key}")


def enqueue_once(outbox: list[OutgoingEvent], events: Iterable[OutgoingEvent]) -> None:
    """An outbox's INSERT ... ON CONFLICT (event_id) DO NOTHING: an id already there is kept."""
    known = {e.event_id for e in outbox}
    for event in events:
        if event.event_id not in known:
            known.add(event.event_id)
            outbox.append(event)


def event_ids(outbox: Callable[[], list[OutgoingEvent]]) -> Callable[[], Awaitable[list[str]]]:
    """A contract harness's reader of the event ids a fake committed to its outbox."""

    async def ids() -> list[str]:
        return [event.event_id for event in outbox()]

    return ids


def as_json(value: Any) -> Any:
    """What a jsonb column gives back: a value that is not JSON fails as it would there."""
    return json.loads(json.dumps(value))
