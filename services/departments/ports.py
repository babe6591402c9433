"""What an enforcer needs from its department's database."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime

from events.catalogue import Fact, Target
from events.land import LandClass
from events.models import CaseFacts, Project, Site
from services.consumer import Consumed
from services.outbox.ports import OutgoingEvent

__all__ = [
    "BatchWrites",
    "Block",
    "BlockApplied",
    "BlockChange",
    "BlockFilter",
    "BlockLifted",
    "Consumed",
    "DepartmentStore",
    "DepartmentTransaction",
    "FactsCorrected",
    "KnownCase",
    "NewCase",
    "TargetRef",
]

# What a block is held against: the subject's id, the case's site or its project. None
# only where the case's facts name none (a case recorded before facts were).
TargetRef = str | Site | Project | None


@dataclass(frozen=True)
class KnownCase:
    case_id: str
    township: str
    subject_kind: str
    subject_id: str
    subject_name: str
    facts: CaseFacts | None = None  # None: recorded before cases carried their facts


@dataclass(frozen=True)
class NewCase:
    case: KnownCase
    filed_event: str


@dataclass(frozen=True)
class FactsCorrected:
    """A known case's facts replaced by a correction, so what it starts next targets the
    corrected site or project."""

    case_id: str
    facts: CaseFacts
    event_id: str


@dataclass(frozen=True)
class BlockApplied:
    """A measure applied, with what it is held against and why (the registry's decision).

    The defaults describe a block as recorded before targets: held against the subject.
    """

    measure: str
    case: KnownCase
    legal_basis: str
    at: datetime
    event_id: str
    target: Target = Target.subject
    target_ref: TargetRef = None  # None with a subject target: the case's subject
    rule: str = ""
    land: tuple[LandClass, ...] = ()
    facts: tuple[Fact, ...] = ()


@dataclass(frozen=True)
class BlockLifted:
    measure: str
    case_id: str
    reason: str
    at: datetime
    event_id: str


BlockChange = BlockApplied | BlockLifted


@dataclass(frozen=True)
class BatchWrites:
    """Everything one batch changes, written in one transaction.

    `changes` are the blocks applied and lifted, in the order they happened: a batch may
    lift a block and apply it again (a correction that moves it to another site), or
    apply and lift it (filed and restored), and only the order says which state it ends
    in. `applied` and `lifted` are for a writer that applies before it lifts; the
    enforcer fills `changes`.
    """

    cases: list[NewCase]
    applied: list[BlockApplied]
    lifted: list[BlockLifted]
    outgoing: list[OutgoingEvent]
    corrected: list[FactsCorrected] = field(default_factory=list)
    changes: list[BlockChange] = field(default_factory=list)

    def in_order(self) -> list[BlockChange]:
        return [*self.applied, *self.lifted, *self.changes]


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
    target: Target = Target.subject
    target_ref: TargetRef = None
    rule: str = ""
    land: tuple[LandClass, ...] = ()
    facts: tuple[Fact, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BlockFilter:
    """Which blocks to read: all, or only the subject's, those held against the site whose
    unit code, parcel code or location text is `site`, or against project `project`."""

    active_only: bool
    subject_id: str | None = None
    site: str | None = None
    project: str | None = None


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
    async def blocks(self, where: BlockFilter) -> list[Block]: ...
