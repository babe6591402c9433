"""What the feedback tracker needs from its database."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from services.consumer import Consumed
from services.feedback.domain import Action, Requirement
from services.outbox.ports import OutgoingEvent


@dataclass(frozen=True)
class Response:
    """A department's answer: done (applied or lifted) or failed, with its reference;
    `answers` is the event that asked for it (the acknowledgement's caused_by)."""

    case_id: str
    department: str
    measure: str
    action: Action
    at: datetime
    event_id: str
    answers: str | None = None
    reference: str | None = None
    error: str | None = None


# A requirement still waiting for its answer (claim_overdue): the requirement as written.
Waiting = Requirement


@dataclass(frozen=True)
class FeedbackWrites:
    """What one batch writes in its transaction: requirements, answers, and the events it
    sends (its dead letters)."""

    required: Sequence[Requirement] = ()
    responses: Sequence[Response] = ()
    outgoing: Sequence[OutgoingEvent] = ()


class FeedbackTransaction(abc.ABC):
    @abc.abstractmethod
    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        """Record these events as taken effect on; returns the ids that were not yet (the
        consumer skeleton claims a batch first, services.consumer.take)."""

    @abc.abstractmethod
    async def record(self, writes: FeedbackWrites) -> None:
        """Requirements, answers and outgoing events, in one transaction.

        Requirements are written in order (domain.in_order): an apply of a measure lifted
        since it was last owed opens a new cycle (owed again, the old answer cleared
        unless this answer came first); a lift is kept only where its department was
        owed the apply and not asked to lift it since. An answer counts for the
        requirement it answers, or one not yet read; one answering a requirement since
        replaced is stale and dropped."""

    @abc.abstractmethod
    async def claim_overdue(self, now: datetime, limit: int) -> list[Waiting]:
        """Waiting rows past their deadline, marked overdue so each is claimed once."""

    @abc.abstractmethod
    async def enqueue(self, events: Sequence[OutgoingEvent]) -> None: ...


class FeedbackStore(abc.ABC):
    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[FeedbackTransaction]: ...
