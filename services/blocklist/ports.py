"""What the blocklist builder needs from its database."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime

from services.blocklist.domain import ActiveBlock, ListedCase, ListHashes, Why
from services.consumer import Consumed
from services.outbox.ports import OutgoingEvent


@dataclass(frozen=True)
class NewBlock:
    """A block to start, or to start again after a lift (the row is then replaced)."""

    measure: str
    department: str
    case: ListedCase
    legal_basis: str
    since: datetime
    event_id: str
    why: Why


@dataclass(frozen=True)
class EndedBlock:
    measure: str
    case_id: str
    at: datetime
    event_id: str


@dataclass(frozen=True)
class MovedSite:
    """A correction's new site for a case: the hashes its site blocks are held against."""

    case_id: str
    site_hashes: tuple[str, ...]
    event_id: str
    lists: tuple[ListHashes, ...] = ()


@dataclass(frozen=True)
class Published:
    """What the builder last published under one key of one list."""

    measure: str
    subject_hash: str  # under the list's own key
    partition: int
    version: int
    listed: bool


Head = tuple[int, str]  # (entries, digest): events.blocklist_head


@dataclass
class ListWrites:
    """Everything one batch changes, written in one transaction: cases, then sites, then
    applies, then lifts. At most one apply and one lift per block: the plan keeps the
    last apply and, when the block ends lifted, the last lift."""

    cases: list[tuple[ListedCase, str]]  # with the case.filed event id
    sites: list[MovedSite]
    applied: list[NewBlock]
    lifted: list[EndedBlock]
    outgoing: list[OutgoingEvent]


class BlocklistTransaction(abc.ABC):
    @abc.abstractmethod
    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        """Record these events as taken effect on; returns the ids that were not yet (the
        consumer skeleton claims a batch first, services.consumer.take)."""

    @abc.abstractmethod
    async def cases(self, case_ids: Sequence[str]) -> dict[str, ListedCase]: ...

    @abc.abstractmethod
    async def active_on(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        """(measure, case id) of the unlifted blocks on these cases."""

    @abc.abstractmethod
    async def write(self, writes: ListWrites) -> None:
        """Write the batch's changes, except `outgoing`, which goes with `enqueue`."""

    @abc.abstractmethod
    async def listed(self, keys: Sequence[tuple[str, str]]) -> list[ActiveBlock]:
        """The unlifted blocks of these (measure, subject hash) pairs, as written so far."""

    @abc.abstractmethod
    async def subjects(self, subject_hashes: Sequence[str]) -> dict[str, ListedCase]:
        """One case of each of these subjects (by deployment-key hash): its list hashes
        name the subject on every list, lifted or not."""

    @abc.abstractmethod
    async def published(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Published]:
        """What was last published under these (measure, list subject hash) keys."""

    @abc.abstractmethod
    async def next_versions(self, count: int) -> list[int]:
        """`count` new list versions, increasing."""

    @abc.abstractmethod
    async def heads(
        self, measure_partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Head]:
        """The current heads of these partitions (absent: never written, so empty)."""

    @abc.abstractmethod
    async def record_published(
        self, rows: Sequence[Published], heads: dict[tuple[str, int], Head]
    ) -> None:
        """Remember what this batch publishes, and the partitions' new heads."""

    @abc.abstractmethod
    async def enqueue(self, outgoing: Sequence[OutgoingEvent]) -> None: ...


class BlocklistStore(abc.ABC):
    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[BlocklistTransaction]: ...

    @abc.abstractmethod
    async def claim_subject_key(self, key_id: str) -> str:
        """Record the subject key on first use; returns the key the lists are built under."""

    @abc.abstractmethod
    async def active(self, measure: str, subject_hash: str) -> list[ActiveBlock]:
        """A subject's unlifted blocks on one measure, for the central check."""
