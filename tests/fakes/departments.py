"""An in-memory DepartmentStore: a batch's writes are applied at the commit only, so a
batch that raises leaves nothing behind; one block row per measure and case, as in
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from events.models import Project, Site
from services.consumer import Consumed
from services.departments.ports import (
    BatchWrites,
    Block,
    BlockApplied,
    BlockFilter,
    BlockLifted,
    DepartmentStore,
    DepartmentTransaction,
    KnownCase,
)
from services.outbox.ports import OutgoingEvent


@dataclass
class MemoryState:
    consumed: dict[str, str] = field(default_factory=dict)
    cases: dict[str, KnownCase] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    outbox: list[OutgoingEvent] = field(default_factory=list)
    transactions: int = 0


class MemoryTransaction(DepartmentTransaction):
    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.pending: list[BatchWrites] = []
        self.claimed: dict[str, str] = {}

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        self.claimed = {e.event_id: e.event_type for e in events}
        for event_id in self.state.consumed.keys() & self.claimed.keys():
            del self.claimed[event_id]
        return set(self.claimed)

    async def known_cases(self, case_ids: Sequence[str]) -> dict[str, KnownCase]:
        return {c: self.state.cases[c] for c in case_ids if c in self.state.cases}

    async def active_blocks(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        wanted = set(case_ids)
        return {
            (b.measure, b.case_id)
            for b in self.state.blocks
            if b.case_id in wanted and b.lifted_at is None
        }

    async def write(self, writes: BatchWrites) -> None:
        self.pending.append(writes)

    def commit(self) -> None:
        state = self.state
        for event_id, event_type in self.claimed.items():
            assert event_id not in state.consumed, "event consumed twice"
            state.consumed[event_id] = event_type
        for writes in self.pending:
            for new in writes.cases:
                assert new.case.case_id not in state.cases, "case written twice"
                state.cases[new.case.case_id] = new.case
            for correction in writes.corrected:
                case = state.cases[correction.case_id]
                state.cases[correction.case_id] = replace(case, facts=correction.facts)
            for change in writes.in_order():
                if isinstance(change, BlockApplied):
                    self._apply(change)
                else:
                    self._lift(change)
            known = {e.event_id for e in state.outbox}
            for event in writes.outgoing:
                assert event.event_id not in known, "outgoing event id repeats"
                known.add(event.event_id)
                state.outbox.append(event)

    def _apply(self, a: BlockApplied) -> None:
        """One row per measure and case, as in Postgres: applying again takes it over."""
        block = Block(
            a.measure,
            a.case.case_id,
            a.case.subject_kind,
            a.case.subject_id,
            a.case.subject_name,
            a.legal_basis,
            a.at,
            None,
            None,
            a.target,
            a.target_ref,
            a.rule,
            a.land,
            a.facts,
        )
        blocks = self.state.blocks
        for index, old in enumerate(blocks):
            if (old.measure, old.case_id) == (a.measure, a.case.case_id):
                assert old.lifted_at is not None, f"applied an active block again: {a}"
                blocks[index] = block
                return
        blocks.append(block)

    def _lift(self, lift: BlockLifted) -> None:
        for index, block in enumerate(self.state.blocks):
            if (block.measure, block.case_id, block.lifted_at) == (
                lift.measure,
                lift.case_id,
                None,
            ):
                self.state.blocks[index] = replace(
                    block, lifted_at=lift.at, lift_reason=lift.reason
                )
                return
        raise AssertionError(f"lifted a block never applied: {lift}")


class MemoryStore(DepartmentStore):
    def __init__(self) -> None:
        self.state = MemoryState()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DepartmentTransaction]:
        tx = MemoryTransaction(self.state)
        yield tx
        tx.commit()  # only reached when the block raised nothing
        self.state.transactions += 1

    async def blocks(self, where: BlockFilter) -> list[Block]:
        def at_site(b: Block) -> bool:
            ref = b.target_ref
            return isinstance(ref, Site) and where.site in (
                ref.real_estate_unit,
                ref.parcel_code,
                ref.location,
            )

        return [
            b
            for b in self.state.blocks
            if (where.subject_id is None or b.subject_id == where.subject_id)
            and (not where.active_only or b.lifted_at is None)
            and (where.site is None or at_site(b))
            and (
                where.project is None
                or (isinstance(b.target_ref, Project) and b.target_ref.code == where.project)
            )
        ]
