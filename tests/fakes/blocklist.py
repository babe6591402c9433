"""An in-memory BlocklistStore: the builder's cases, blocks, published keys and heads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from services.blocklist.domain import ActiveBlock, ListedCase, ListHashes
from services.blocklist.ports import (
    BlocklistStore,
    BlocklistTransaction,
    EndedBlock,
    Head,
    ListWrites,
    NewBlock,
    Published,
)
from services.consumer import Consumed
from services.outbox.ports import OutgoingEvent
from tests.fakes.snapshots import Committed, PgSequence, enqueue_once, foreign_key


@dataclass
class Block:
    """One row of blocklist.blocks: the block as applied, and its lift while it holds none."""

    applied: NewBlock
    lifted: EndedBlock | None = None


@dataclass
class BlocklistState:
    consumed: dict[str, str] = field(default_factory=dict)  # event id -> type
    cases: dict[str, ListedCase] = field(default_factory=dict)
    blocks: dict[tuple[str, str], Block] = field(default_factory=dict)  # (measure, case id)
    published: dict[tuple[str, str], Published] = field(default_factory=dict)
    heads: dict[tuple[str, int], Head] = field(default_factory=dict)
    outbox: list[OutgoingEvent] = field(default_factory=list)
    subject_key: str | None = None

    def unlifted(self) -> list[tuple[str, ActiveBlock]]:
        """The unlifted blocks, each under the subject hash it was applied to and with its
        case as it stands now (a moved site)."""
        return [
            (
                a.case.subject_hash,
                ActiveBlock(
                    a.measure,
                    a.department,
                    a.case.case_id,
                    a.legal_basis,
                    a.since,
                    self.cases[a.case.case_id],
                    a.why,
                ),
            )
            for a in (b.applied for _, b in sorted(self.blocks.items()) if b.lifted is None)
        ]


def as_stored(lists: Sequence[ListHashes]) -> tuple[ListHashes, ...]:
    """A case's list hashes as the jsonb object keyed by measure gives them back: one per
    measure (the last written), in measure order."""
    return tuple(sorted({h.measure: h for h in lists}.values(), key=lambda h: h.measure))


class FakeBlocklistTransaction(BlocklistTransaction):
    def __init__(self, state: BlocklistState, versions: PgSequence) -> None:
        self.state = state
        self.versions = versions

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        fresh = {e.event_id: e.event_type for e in events if e.event_id not in self.state.consumed}
        self.state.consumed.update(fresh)
        return set(fresh)

    async def cases(self, case_ids: Sequence[str]) -> dict[str, ListedCase]:
        return {c: self.state.cases[c] for c in case_ids if c in self.state.cases}

    async def active_on(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        return {
            key
            for key, block in self.state.blocks.items()
            if key[1] in case_ids and block.lifted is None
        }

    async def write(self, writes: ListWrites) -> None:
        state = self.state
        for case, _ in writes.cases:  # ON CONFLICT (case_id) DO NOTHING
            state.cases.setdefault(case.case_id, replace(case, lists=as_stored(case.lists)))
        for moved in writes.sites:
            if moved.case_id in state.cases:
                state.cases[moved.case_id] = replace(
                    state.cases[moved.case_id],
                    site_hashes=moved.site_hashes,
                    lists=as_stored(moved.lists),
                )
        for new in writes.applied:  # a lifted block applied again is the same row, replaced
            foreign_key("blocklist.cases", new.case.case_id, new.case.case_id in state.cases)
            state.blocks[(new.measure, new.case.case_id)] = Block(new)
        for ended in writes.lifted:
            block = state.blocks.get((ended.measure, ended.case_id))
            if block is not None and block.lifted is None:
                block.lifted = ended

    async def listed(self, keys: Sequence[tuple[str, str]]) -> list[ActiveBlock]:
        wanted = set(keys)
        return [
            block for subject, block in self.state.unlifted() if (block.measure, subject) in wanted
        ]

    async def subjects(self, subject_hashes: Sequence[str]) -> dict[str, ListedCase]:
        found: dict[str, ListedCase] = {}
        for _, case in sorted(self.state.cases.items()):  # the first case of each subject
            if case.subject_hash in subject_hashes:
                found.setdefault(case.subject_hash, case)
        return found

    async def published(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Published]:
        return {key: self.state.published[key] for key in keys if key in self.state.published}

    async def next_versions(self, count: int) -> list[int]:
        return [self.versions.next() for _ in range(count)]

    async def heads(
        self, measure_partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Head]:
        heads = self.state.heads
        return {where: heads[where] for where in measure_partitions if where in heads}

    async def record_published(
        self, rows: Sequence[Published], heads: dict[tuple[str, int], Head]
    ) -> None:
        self.state.published.update({(r.measure, r.subject_hash): r for r in rows})
        self.state.heads.update(heads)

    async def enqueue(self, outgoing: Sequence[OutgoingEvent]) -> None:
        enqueue_once(self.state.outbox, outgoing)


class FakeBlocklistStore(Committed[BlocklistState], BlocklistStore):
    def __init__(self) -> None:
        super().__init__(BlocklistState())
        self.versions = PgSequence()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeBlocklistTransaction]:
        async with self.tables.begin() as work:
            yield FakeBlocklistTransaction(work, self.versions)

    async def claim_subject_key(self, key_id: str) -> str:
        async with self.tables.begin() as work:
            if work.subject_key is None:
                work.subject_key = key_id
            return work.subject_key

    async def active(self, measure: str, subject_hash: str) -> list[ActiveBlock]:
        found = [b for s, b in self.state.unlifted() if (b.measure, s) == (measure, subject_hash)]
        return sorted(found, key=lambda b: b.since)
