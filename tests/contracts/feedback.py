"""What the feedback tracker relies on from a FeedbackStore.

Each check takes a `Ledger` harness: the store, a case's `responses` rows as the readers
see them, and the event ids committed to the tracker's outbox (neither is on the port).
Checks use cases of their own; `claim_overdue` reads every case, so only the overdue
check's deadlines fall before 2020, and the others' stay out of its reach."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from services.feedback.domain import Action, Requirement
from services.feedback.ports import (
    FeedbackStore,
    FeedbackTransaction,
    FeedbackWrites,
    Response,
    Waiting,
)
from services.feedback.status import ResponseRow, ResponseStatus, status
from services.outbox.ports import OutgoingEvent
from tests.contracts.claims import claim, claimed_once, fresh
from tests.contracts.registry import Boom

T = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DEPARTMENT, MEASURE = "power_grid", "no_new_supply"
Owed = tuple[str, str, str]  # department, measure, action


@dataclass
class Ledger:
    store: FeedbackStore
    rows: Callable[[str], Awaitable[dict[Owed, ResponseRow]]]  # a case's, committed
    outbox: Callable[[], Awaitable[list[str]]]  # committed event ids, in outbox order


def owed(case_id: str, action: Action, by: str, at: datetime = T) -> Requirement:
    return Requirement(case_id, DEPARTMENT, MEASURE, action, at, at + DAY, by)


def answer(
    case_id: str, action: Action, answers: str | None, at: datetime, error: str | None = None
) -> Response:
    return Response(
        case_id,
        DEPARTMENT,
        MEASURE,
        action,
        at,
        fresh("ack"),
        answers=answers,
        reference=None if error else f"ref-{answers}",
        error=error,
    )


async def take(
    ledger: Ledger, required: Sequence[Requirement] = (), answers: Sequence[Response] = ()
) -> None:
    """A batch as the tracker takes it: its event ids claimed, then its effect recorded."""
    async with ledger.store.transaction() as tx:
        await claim(tx, *{r.required_by for r in required}, *{a.event_id for a in answers})
        await tx.record(FeedbackWrites(required, answers))


async def row(ledger: Ledger, case_id: str, action: Action = "apply") -> ResponseRow:
    return (await ledger.rows(case_id))[(DEPARTMENT, MEASURE, action)]


async def an_event_is_claimed_once(ledger: Ledger) -> None:
    await claimed_once(ledger.store.transaction)


async def nothing_stays_after_an_exception(ledger: Ledger) -> None:
    case_id, event_id = fresh("RL"), fresh("filed")
    before = await ledger.outbox()
    with pytest.raises(Boom):
        async with ledger.store.transaction() as tx:
            await claim(tx, event_id)
            notice = OutgoingEvent(fresh("n"), "response.overdue", "acks", case_id, b"{}")
            await tx.record(
                FeedbackWrites(
                    required=[owed(case_id, "apply", event_id)],
                    responses=[answer(case_id, "apply", event_id, T)],
                    outgoing=[notice],
                )
            )
            assert await ledger.rows(case_id) == {}  # not committed: not seen outside
            raise Boom
    assert await ledger.rows(case_id) == {}
    assert await ledger.outbox() == before
    async with ledger.store.transaction() as tx:
        assert await claim(tx, event_id) == {event_id}  # the claim was not kept


async def an_apply_is_owed_until_answered_and_answered_once(ledger: Ledger) -> None:
    case_id, filed = fresh("RL"), fresh("filed")
    await take(ledger, [owed(case_id, "apply", filed)])
    waiting = await row(ledger, case_id)
    assert (waiting.required_at, waiting.due_at) == (T, T + DAY)
    assert status(waiting, T) is ResponseStatus.pending
    assert status(waiting, T + 2 * DAY) is ResponseStatus.overdue
    await take(ledger, answers=[answer(case_id, "apply", filed, T + DAY / 2)])
    await take(ledger, answers=[answer(case_id, "apply", filed, T + DAY * 3)])  # again
    done = await row(ledger, case_id)
    assert (done.done_at, done.reference) == (T + DAY / 2, f"ref-{filed}")
    assert status(done, T + 9 * DAY) is ResponseStatus.done
    late_case = fresh("RL")
    await take(ledger, [owed(late_case, "apply", filed)])
    await take(ledger, answers=[answer(late_case, "apply", filed, T + 2 * DAY)])
    assert status(await row(ledger, late_case), T + 9 * DAY) is ResponseStatus.done_late


async def an_answer_read_before_its_requirement_counts_for_it(ledger: Ledger) -> None:
    case_id, filed = fresh("RL"), fresh("filed")
    await take(ledger, answers=[answer(case_id, "apply", filed, T + DAY / 4)])
    early = await row(ledger, case_id)
    assert (early.required_at, early.due_at, early.done_at) == (None, None, T + DAY / 4)
    await take(ledger, [owed(case_id, "apply", filed)])
    done = await row(ledger, case_id)
    assert (done.due_at, done.done_at) == (T + DAY, T + DAY / 4)
    assert status(done, T + 9 * DAY) is ResponseStatus.done


async def an_apply_owed_and_in_force_is_not_owed_again(ledger: Ledger) -> None:
    case_id, filed, corrected = fresh("RL"), fresh("filed"), fresh("corrected")
    await take(ledger, [owed(case_id, "apply", filed)])
    await take(ledger, answers=[answer(case_id, "apply", filed, T)])
    await take(ledger, [owed(case_id, "apply", corrected, T + DAY)])
    kept = await row(ledger, case_id)
    assert (kept.required_at, kept.done_at) == (T, T)


async def a_lift_is_owed_only_where_the_apply_was_and_not_lifted_since(ledger: Ledger) -> None:
    case_id, filed = fresh("RL"), fresh("filed")
    await take(ledger, [owed(case_id, "lift", fresh("restored"))])
    assert await ledger.rows(case_id) == {}  # never applied: nothing to lift
    first, second = fresh("corrected"), fresh("restored")
    await take(ledger, [owed(case_id, "apply", filed)])
    await take(ledger, [owed(case_id, "lift", first, T + DAY)])
    await take(ledger, [owed(case_id, "lift", second, T + 2 * DAY)])  # lifted already
    lifted = await row(ledger, case_id, "lift")
    assert (lifted.required_at, lifted.due_at) == (T + DAY, T + 2 * DAY)


async def a_measure_owed_again_after_its_lift_is_a_new_cycle(ledger: Ledger) -> None:
    case_id, filed, lifted, again = fresh("RL"), fresh("filed"), fresh("lift"), fresh("again")
    await take(ledger, [owed(case_id, "apply", filed)])
    await take(ledger, answers=[answer(case_id, "apply", filed, T)])
    await take(ledger, [owed(case_id, "lift", lifted, T + DAY)])
    await take(ledger, answers=[answer(case_id, "lift", lifted, T + DAY)])
    await take(ledger, [owed(case_id, "apply", again, T + 2 * DAY)])
    renewed = await row(ledger, case_id)
    assert (renewed.required_at, renewed.done_at, renewed.reference) == (T + 2 * DAY, None, None)
    await take(ledger, answers=[answer(case_id, "apply", filed, T + 3 * DAY)])  # stale
    assert (await row(ledger, case_id)).done_at is None
    await take(ledger, answers=[answer(case_id, "apply", again, T + 4 * DAY)])
    assert (await row(ledger, case_id)).done_at == T + 4 * DAY
    await take(ledger, [owed(case_id, "lift", fresh("lift"), T + 5 * DAY)])
    assert (await row(ledger, case_id, "lift")).done_at is None  # owed again, unanswered


async def an_answer_to_a_new_cycle_read_before_it_is_kept(ledger: Ledger) -> None:
    case_id, filed, lifted, again = fresh("RL"), fresh("filed"), fresh("lift"), fresh("again")
    await take(ledger, [owed(case_id, "apply", filed)])
    await take(ledger, answers=[answer(case_id, "apply", filed, T)])
    await take(ledger, [owed(case_id, "lift", lifted, T + DAY)])
    await take(ledger, answers=[answer(case_id, "apply", again, T + 2 * DAY)])  # read first
    await take(ledger, [owed(case_id, "apply", again, T + 2 * DAY)])
    renewed = await row(ledger, case_id)
    assert (renewed.required_at, renewed.done_at) == (T + 2 * DAY, T + 2 * DAY)


async def a_failure_stands_until_the_measure_is_done(ledger: Ledger) -> None:
    case_id, filed = fresh("RL"), fresh("filed")
    await take(ledger, [owed(case_id, "apply", filed)])
    await take(ledger, answers=[answer(case_id, "apply", filed, T, error="no such meter")])
    failed = await row(ledger, case_id)
    assert (failed.failed_at, failed.error, failed.done_at) == (T, "no such meter", None)
    assert status(failed, T + 9 * DAY) is ResponseStatus.failed
    await take(ledger, answers=[answer(case_id, "apply", filed, T + DAY / 2)])
    assert status(await row(ledger, case_id), T + 9 * DAY) is ResponseStatus.done
    await take(ledger, answers=[answer(case_id, "apply", filed, T + DAY, error="again")])
    kept = await row(ledger, case_id)  # a failure to the same request keeps it done
    assert (kept.done_at, kept.error) == (T + DAY / 2, "again")


async def each_overdue_answer_is_claimed_once_earliest_deadline_first(ledger: Ledger) -> None:
    old = datetime(2001, 1, 1, tzinfo=UTC)  # before every other check's deadlines
    # Case ids, and the order written, run against the deadlines: only these order a claim.
    prefix, starts = fresh("RL"), [old + 2 * DAY, old + DAY, old, old + 3 * DAY, old + 30 * DAY]
    required = [owed(f"{prefix}-{n}", "apply", fresh("filed"), at) for n, at in enumerate(starts)]
    done = required[3]
    await take(ledger, required)
    await take(ledger, answers=[answer(done.case_id, "apply", done.required_by, old)])
    now = old + 10 * DAY
    first, second, third = (
        Waiting(
            r.case_id, r.department, r.measure, r.action, r.required_at, r.due_at, r.required_by
        )
        for r in (required[2], required[1], required[0])
    )

    async def claim_overdue(tx: FeedbackTransaction, limit: int) -> list[Waiting]:
        return sorted(await tx.claim_overdue(now, limit), key=lambda w: w.due_at)

    async with ledger.store.transaction() as tx:
        assert await claim_overdue(tx, 2) == [first, second]  # the earliest deadlines
    with pytest.raises(Boom):
        async with ledger.store.transaction() as tx:
            assert await claim_overdue(tx, 10) == [third]
            raise Boom
    async with ledger.store.transaction() as tx:
        assert await claim_overdue(tx, 10) == [third]  # not the done one, nor the one not due
        assert await claim_overdue(tx, 10) == []
    assert (await row(ledger, first.case_id)).overdue_at == now
    assert status(await row(ledger, first.case_id), old) is ResponseStatus.overdue
    assert (await row(ledger, required[4].case_id)).overdue_at is None


async def an_event_enqueued_twice_is_kept_once_in_enqueue_order(ledger: Ledger) -> None:
    first, second = (
        OutgoingEvent(fresh(n), "response.overdue", "acks", "RL-1", b"{}") for n in "ab"
    )
    async with ledger.store.transaction() as tx:
        await tx.enqueue([first, first])
        await tx.record(FeedbackWrites(outgoing=[second, first]))
    async with ledger.store.transaction() as tx:
        await tx.enqueue([second])
    ids = await ledger.outbox()
    assert ids[-2:] == [first.event_id, second.event_id]
    assert ids.count(first.event_id) == ids.count(second.event_id) == 1


CHECKS = [
    an_event_is_claimed_once,
    nothing_stays_after_an_exception,
    an_apply_is_owed_until_answered_and_answered_once,
    an_answer_read_before_its_requirement_counts_for_it,
    an_apply_owed_and_in_force_is_not_owed_again,
    a_lift_is_owed_only_where_the_apply_was_and_not_lifted_since,
    a_measure_owed_again_after_its_lift_is_a_new_cycle,
    an_answer_to_a_new_cycle_read_before_it_is_kept,
    a_failure_stands_until_the_measure_is_done,
    each_overdue_answer_is_claimed_once_earliest_deadline_first,
    an_event_enqueued_twice_is_kept_once_in_enqueue_order,
]
