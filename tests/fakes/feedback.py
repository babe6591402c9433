"""An in-memory FeedbackStore: the tracker's `responses` rows and what it consumed, kept
by the rules the adapter's statements hold (services/adapters/feedback_store.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime

from services.consumer import Consumed
from services.feedback.domain import Action, Requirement, in_order
from services.feedback.ports import (
    FeedbackStore,
    FeedbackTransaction,
    FeedbackWrites,
    Response,
    Waiting,
)
from services.feedback.status import ResponseRow
from services.outbox.ports import OutgoingEvent
from tests.fakes.snapshots import Committed, PgSequence, enqueue_once

Key = tuple[str, str, str, str]  # case id, department, measure, action


@dataclass(frozen=True, kw_only=True)
class Row(ResponseRow):
    """A whole row of `responses`: what readers see, and the columns the tracker keeps."""

    required_at: datetime | None = None
    due_at: datetime | None = None
    done_at: datetime | None = None
    failed_at: datetime | None = None
    required_by: str | None = None
    required_seq: int | None = None  # the order requirements were written in
    done_by: str | None = None
    answers: str | None = None  # the requirement's event an answer names (caused_by)

    def past_due(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at < now

    @property
    def key(self) -> Key:
        return (self.case_id, self.department, self.measure, self.action)

    def seen(self) -> ResponseRow:
        """The row as the readers select it (services.feedback.status)."""
        return ResponseRow(**{f.name: getattr(self, f.name) for f in fields(ResponseRow)})


@dataclass
class FeedbackState:
    rows: dict[Key, Row] = field(default_factory=dict)
    consumed: set[str] = field(default_factory=set)  # the tracker's event ids
    outbox: list[OutgoingEvent] = field(default_factory=list)

    def lifted_since(self, apply: Row) -> bool:
        """A lift of the measure was required after this apply was."""
        lift = self.rows.get((*apply.key[:3], "lift"))
        return (
            lift is not None
            and lift.required_seq is not None
            and apply.required_seq is not None
            and lift.required_seq > apply.required_seq
        )

    def counts(self, row: Row, answer: Response) -> bool:
        """An answer counts for the requirement it answers, or one not read yet."""
        return (
            row.required_by is None
            or row.required_by == answer.answers
            or answer.answers not in self.consumed
        )


class FakeFeedbackTransaction(FeedbackTransaction):
    def __init__(self, state: FeedbackState, numbers: PgSequence) -> None:
        self.state = state
        self.numbers = numbers

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        fresh = {e.event_id for e in events} - self.state.consumed
        self.state.consumed |= fresh
        return fresh

    async def record(self, writes: FeedbackWrites) -> None:
        for wave in in_order(writes.required):
            for action in ("apply", "lift"):
                for requirement in wave:
                    if requirement.action == action:
                        self._require(requirement)
        for answer in [r for r in writes.responses if r.error is None]:
            self._done(answer)
        for answer in [r for r in writes.responses if r.error is not None]:
            self._failed(answer)
        enqueue_once(self.state.outbox, writes.outgoing)

    def _require(self, r: Requirement) -> None:
        rows = self.state.rows
        old = rows.get(r.key)
        seq = self.numbers.next()  # taken whether or not the row is written
        if r.action == "lift":  # owed only where the apply was owed and not lifted since
            apply = rows.get((*r.key[:3], "apply"))
            if apply is None or apply.required_seq is None or self.state.lifted_since(apply):
                return
        elif old is not None and old.required_seq is not None and not self.state.lifted_since(old):
            return  # owed already and in force: a measure is not applied twice
        # The answer stays only if it came before any requirement, or answers this one;
        # otherwise the row starts again: all it keeps is what the requirement writes.
        if old is None or not (old.required_by is None or old.answers == r.required_by):
            old = Row(
                case_id=r.case_id, department=r.department, measure=r.measure, action=r.action
            )
        rows[r.key] = replace(
            old,
            required_at=r.required_at,
            due_at=r.due_at,
            required_by=r.required_by,
            required_seq=seq,
            overdue_at=None,
        )

    def _answered(self, answer: Response) -> Row | None:
        """The row an answer goes to: a new one, or the row it counts for; None when the
        answer is stale (it answers a requirement since replaced)."""
        key = (answer.case_id, answer.department, answer.measure, answer.action)
        old = self.state.rows.get(key)
        if old is None:
            return Row(case_id=key[0], department=key[1], measure=key[2], action=key[3])
        return old if self.state.counts(old, answer) else None

    def _done(self, answer: Response) -> None:
        row = self._answered(answer)
        if row is None or (row.done_at is not None and row.answers == answer.answers):
            return
        self.state.rows[row.key] = replace(
            row,
            done_at=answer.at,
            done_by=answer.event_id,
            reference=answer.reference,
            answers=answer.answers,
        )

    def _failed(self, answer: Response) -> None:
        row = self._answered(answer)
        if row is None:
            return
        same = row.answers is not None and row.answers == answer.answers
        self.state.rows[row.key] = replace(
            row,
            failed_at=answer.at,
            error=answer.error,
            answers=answer.answers,
            done_at=row.done_at if same else None,
        )

    async def claim_overdue(self, now: datetime, limit: int) -> list[Waiting]:
        late = sorted(
            (
                row
                for row in self.state.rows.values()
                if row.done_at is None and row.overdue_at is None and row.past_due(now)
            ),
            key=lambda row: row.due_at or now,
        )[:limit]
        claimed = []
        for row in late:
            self.state.rows[row.key] = replace(row, overdue_at=now)
            assert row.required_at and row.due_at and row.required_by
            action: Action = "apply" if row.action == "apply" else "lift"
            claimed.append(
                Waiting(*row.key[:3], action, row.required_at, row.due_at, row.required_by)
            )
        return claimed

    async def enqueue(self, events: Sequence[OutgoingEvent]) -> None:
        enqueue_once(self.state.outbox, events)


class FakeFeedbackStore(Committed[FeedbackState], FeedbackStore):
    def __init__(self) -> None:
        super().__init__(FeedbackState())
        self.numbers = PgSequence()  # response_requirement_seq

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeFeedbackTransaction]:
        async with self.tables.begin() as work:
            yield FakeFeedbackTransaction(work, self.numbers)
