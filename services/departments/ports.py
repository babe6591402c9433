"""What an enforcer needs from its department's database."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from services.outbox.ports import OutgoingEvent


@dataclass(frozen=True)
class KnownCase:
    case_id: str
    township: str
    subject_kind: str
    subject_id: str
    subject_name: str


@dataclass(frozen=True)
class NewCase:
    case: KnownCase
    filed_event: str


@dataclass(frozen=True)
class BlockApplied:
    measure: str
    case: KnownCase
    legal_basis: str
    at: datetime
    event_id: str


@dataclass(frozen=True)
class BlockLifted:
    measure: str
    case_id: str
    reason: str
    at: datetime
    event_id: str


@dataclass(frozen=True, order=True)
class Consumed:
    event_id: str
    event_type: str


@dataclass(frozen=True)
class BatchWrites:
    """Everything one batch changes, written in one transaction."""

    cases: list[NewCase]
    applied: list[BlockApplied]
    lifted: list[BlockLifted]
    outgoing: list[OutgoingEvent]


@dataclass(frozen=True)
class Block:
    measure: str
    case_id: str
    subject_kind: str
    subject_id: str
    subject_name: str
    legal_basis: str
    applied_at: datetime
    lifted_at: datetime | None
    lift_reason: str | None


class DepartmentTransaction(abc.ABC):
    @abc.abstractmethod
    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        """Record these events as taken effect on; returns the ids that were not yet.

        Claimed first, so that two workers of a department handed the same event (during
        a rebalance) cannot both act on it: the second waits for the first to commit and
        then finds the id taken."""

    @abc.abstractmethod
    async def known_cases(self, case_ids: Sequence[str]) -> dict[str, KnownCase]: ...

    @abc.abstractmethod
    async def active_blocks(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(measure, case id) of the unlifted blocks on these cases."""

    @abc.abstractmethod
    async def write(self, writes: BatchWrites) -> None: ...


class DepartmentStore(abc.ABC):
    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[DepartmentTransaction]: ...

    @abc.abstractmethod
    async def blocks(self, *, subject_id: str | None, active_only: bool) -> list[Block]: ...
