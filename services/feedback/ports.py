"""What the feedback tracker needs from its database."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from services.feedback.domain import Action, Requirement
from services.outbox.ports import OutgoingEvent


@dataclass(frozen=True)
class Response:
    """A department's answer: done (applied or lifted) or failed, with its reference."""

    case_id: str
    department: str
    measure: str
    action: Action
    at: datetime
    event_id: str
    reference: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Waiting:
    case_id: str
    department: str
    measure: str
    action: Action
    required_at: datetime
    due_at: datetime


class FeedbackTransaction(abc.ABC):
    @abc.abstractmethod
    async def consumed_among(self, event_ids: Sequence[str]) -> set[str]: ...

    @abc.abstractmethod
    async def record(
        self,
        *,
        required: Sequence[Requirement],
        responses: Sequence[Response],
        consumed: Sequence[tuple[str, str]],
        outgoing: Sequence[OutgoingEvent],
    ) -> None:
        """Requirements (a lift only where its apply was required), answers, consumed ids."""

    @abc.abstractmethod
    async def claim_overdue(self, now: datetime, limit: int) -> list[Waiting]:
        """Waiting rows past their deadline, marked overdue so each is claimed once."""

    @abc.abstractmethod
    async def enqueue(self, events: Sequence[OutgoingEvent]) -> None: ...


class FeedbackStore(abc.ABC):
    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[FeedbackTransaction]: ...
