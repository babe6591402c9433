"""One consumer skeleton for every service that takes effect from the bus: the department
enforcers, the blocklist builder and the feedback tracker are handlers plugged into it.

A batch is decoded (a message that cannot be trusted becomes a dead letter with its
reason), then in one transaction: the batch's event ids are claimed first, so two
workers handed one event during a rebalance cannot both act on it (the second waits on
the first's commit and finds the id taken); the handler reads what it needs, plans in
pure code, and writes the effect with its outgoing events (outbox). Once committed, the
relay is woken and the batch counted; a database error retries the same batch with the
shared backoff (events.backoff through services.runtime.service.retrying).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from events.envelope import Envelope
from events.models import Payload
from services.consuming import RawMessage, first_deliveries
from services.metrics import observe_batch
from services.outbox.ports import OutgoingEvent
from services.runtime.service import retrying

log = logging.getLogger("redline.consumer")

Events = list[tuple[Envelope, Payload]]


@dataclass(frozen=True, order=True)
class Consumed:
    """An event id (with its type) a consumer records as taken effect on."""

    event_id: str
    event_type: str


@runtime_checkable
class Claims(Protocol):
    """A transaction that records event ids in its consumer's tracking table."""

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        """Record these events as taken effect on; returns the ids that were not yet. A
        claim of an id another open transaction claimed waits for it to end."""
        ...


@dataclass(frozen=True)
class Decoded:
    """A batch decoded: the trusted events, and a dead letter (and reason) for each other."""

    events: Events
    dead: list[OutgoingEvent]
    reasons: list[str]


class Outcome(Protocol):
    duplicates: int
    dead_letters: list[str]


TxT = TypeVar("TxT", bound=Claims)
StateT = TypeVar("StateT")
PlanT = TypeVar("PlanT")
OutcomeT = TypeVar("OutcomeT", bound=Outcome)
OutcomeT_co = TypeVar("OutcomeT_co", bound=Outcome, covariant=True)


class Handler(Protocol[TxT, StateT, PlanT, OutcomeT_co]):
    """What a consumer does with a batch, in the skeleton's order."""

    def decode(self, messages: Sequence[RawMessage]) -> Decoded: ...

    def transaction(self) -> AbstractAsyncContextManager[TxT]: ...

    async def read(self, tx: TxT, fresh: Events) -> StateT:
        """What the plan needs from the store about these first deliveries."""
        ...

    def plan(self, fresh: Events, state: StateT) -> PlanT:
        """Pure: the effect of the first deliveries, given `state`."""
        ...

    async def apply(self, tx: TxT, plan: PlanT, dead: Sequence[OutgoingEvent]) -> OutcomeT_co:
        """Write the plan and the outgoing events (the dead letters among them)."""
        ...


async def take(
    handler: Handler[TxT, StateT, PlanT, OutcomeT], messages: Sequence[RawMessage]
) -> OutcomeT:
    """One attempt at a batch, all in one transaction: claim, read, plan, write."""
    decoded = handler.decode(messages)
    # Sorted, so that concurrent claims of overlapping batches wait, never deadlock.
    events = sorted({Consumed(envelope.id, envelope.type) for envelope, _ in decoded.events})
    async with handler.transaction() as tx:
        claimed = await tx.claim(events)
        taken = {event.event_id for event in events} - claimed
        fresh, duplicates = first_deliveries(decoded.events, taken)
        state = await handler.read(tx, fresh)
        outcome = await handler.apply(tx, handler.plan(fresh, state), decoded.dead)
    outcome.duplicates = duplicates
    outcome.dead_letters = decoded.reasons
    return outcome


class Consumer(Generic[OutcomeT]):
    """A handler in service: each batch retried until stored, then the relay woken, the
    outcome counted and the batch observed under the consumer's metrics label `name`."""

    def __init__(
        self,
        name: str,
        handle: Callable[[Sequence[RawMessage]], Awaitable[OutcomeT]],
        *,
        wake: Callable[[], None] | None = None,
        count: Callable[[OutcomeT], None] | None = None,
    ) -> None:
        self.name = name
        self._handle = handle
        self._wake = wake
        self._count = count

    async def attempt(self, messages: Sequence[RawMessage]) -> OutcomeT:
        """One attempt (a database error is raised, for `run` to retry)."""
        outcome = await self._handle(messages)
        if self._wake is not None:
            self._wake()  # its outgoing events are committed: the relay may read them
        if self._count is not None:
            self._count(outcome)
        if outcome.dead_letters:
            log.warning("%s: dead-lettered %s", self.name, outcome.dead_letters)
        return outcome

    async def run(self, stop: asyncio.Event, messages: Sequence[RawMessage]) -> OutcomeT | None:
        """The batch stored, database errors retried on it; None if asked to stop first."""
        began = time.monotonic()
        outcome = await retrying(stop, lambda: self.attempt(messages), what=self.name)
        if outcome is not None:
            observe_batch(self.name, messages, time.monotonic() - began, outcome.dead_letters)
        return outcome
