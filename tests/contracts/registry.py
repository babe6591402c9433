"""What the registry's handlers rely on from a RegistryStore.

Each check takes a `Registry` harness: the store, and what it committed to its outbox and
audit log (not on the port: the relay and the audit chain read those)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.errors import DatabaseError
from services.idempotency import StoredResponse
from services.outbox.ports import OutgoingEvent
from services.registry.domain import CaseStatus, SigningBody, SignOff
from services.registry.ports import CaseRow, RegistryStore

YEAR = 2026


@dataclass
class Registry:
    store: RegistryStore
    outbox: Callable[[], Awaitable[list[str]]]  # committed event ids, in outbox order
    audit: Callable[[], Awaitable[list[tuple[str, str]]]]  # committed (action, case id)


class Boom(Exception):
    """Raised inside a transaction to see it rolled back."""


def case_row(case_id: str, township: str = "duizhen") -> CaseRow:
    return CaseRow(
        case_id=case_id,
        township=township,
        status=CaseStatus.filed,
        subject={"kind": "enterprise", "id": "91140000MA0000000X", "name": "某公司"},
        parcels=[{"land_class": "permanent_basic_farmland", "area_mu": "6"}],
        basic_farmland_mu=Decimal("6"),
        cultivated_mu=Decimal("6.5"),
        violation_kind="building",
        source="patrol",
        found_on=date(2026, 3, 1),
        clue_id=None,
        accountability_started_at=None,
        facts={"use": "business_premises"},
    )


def event(name: str) -> OutgoingEvent:
    return OutgoingEvent(f"{name}-{uuid.uuid4()}", "case.filed", "violations", name, b"{}")


async def file(registry: Registry, township: str = "duizhen") -> str:
    """A committed case with one record and its event; its id."""
    async with registry.store.transaction() as tx:
        case_id = await tx.next_case_id(YEAR)
        await tx.insert_case(case_row(case_id, township))
        filed = event("filed")
        await tx.append_record(case_id, "filing", filed, {"case_id": case_id})
        await tx.enqueue(filed)
    return case_id


async def a_committed_case_reads_back_as_written_with_its_records_in_order(
    registry: Registry,
) -> None:
    case_id = await file(registry)
    async with registry.store.transaction() as tx:
        second = event("second")
        await tx.append_record(case_id, "penalty", second, {"fine": "100.50", "on": "2026-03-02"})
        await tx.enqueue(second)
    found = await registry.store.get_case(case_id)
    assert found is not None
    row, records = found
    expected = case_row(case_id)
    assert replace(row, filed_at=None, updated_at=None) == expected
    assert row.filed_at is not None and row.filed_at.tzinfo is not None
    assert [(r.seq, r.step) for r in records] == [(1, "filing"), (2, "penalty")]
    assert records[1].event_id == second.event_id
    assert records[1].data == {"fine": "100.50", "on": "2026-03-02"}
    assert (await registry.outbox())[-1] == second.event_id
    assert [a for a in await registry.audit() if a[1] == case_id] == [
        ("filing", case_id),
        ("penalty", case_id),
    ]


async def nothing_is_seen_before_the_commit_and_nothing_stays_after_an_exception(
    registry: Registry,
) -> None:
    store = registry.store
    before = await registry.outbox()
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            case_id = await tx.next_case_id(YEAR)
            await tx.insert_case(case_row(case_id))
            lost = event("lost")
            await tx.append_record(case_id, "filing", lost, {})
            await tx.enqueue(lost)
            await tx.save_idempotent_response("k-" + case_id, StoredResponse("op", "h", 200, {}))
            assert await store.get_case(case_id) is None  # not committed: not seen outside
            raise Boom
    assert await store.get_case(case_id) is None
    assert await registry.outbox() == before
    assert all(a[1] != case_id for a in await registry.audit())
    async with store.transaction() as tx:
        assert await tx.claim_idempotency_key("k-" + case_id) is None
        # A sequence is not rolled back: the number is not handed out again.
        assert await tx.next_case_id(YEAR) != case_id


async def case_ids_increase_and_a_second_case_under_one_id_is_refused(
    registry: Registry,
) -> None:
    first, second = await file(registry), await file(registry)
    assert first.startswith(f"RL-{YEAR}-") and second > first
    with pytest.raises(DatabaseError):
        async with registry.store.transaction() as tx:
            other = await tx.next_case_id(YEAR)
            await tx.insert_case(case_row(other))
            await tx.insert_case(case_row(first))
    assert await registry.store.get_case(other) is None  # the whole transaction is gone


async def an_idempotency_key_gives_back_its_answer_and_is_saved_once(registry: Registry) -> None:
    key = f"key-{uuid.uuid4()}"
    answer = StoredResponse("file_case", "abc", 200, {"case_id": "RL-1", "ids": ["e1"]})
    async with registry.store.transaction() as tx:
        assert await tx.claim_idempotency_key(key) is None
        await tx.save_idempotent_response(key, answer)
    async with registry.store.transaction() as tx:
        assert await tx.claim_idempotency_key(key) == answer
    with pytest.raises(DatabaseError):
        async with registry.store.transaction() as tx:
            await tx.save_idempotent_response(key, replace(answer, request_hash="other"))
    async with registry.store.transaction() as tx:
        assert await tx.claim_idempotency_key(key) == answer


async def an_event_enqueued_twice_is_kept_once_in_enqueue_order(registry: Registry) -> None:
    first, second = event("a"), event("b")
    async with registry.store.transaction() as tx:
        await tx.enqueue(first)
        await tx.enqueue(second)
        await tx.enqueue(first)
    async with registry.store.transaction() as tx:
        await tx.enqueue(second)
    ids = await registry.outbox()
    assert ids[-2:] == [first.event_id, second.event_id]
    assert ids.count(first.event_id) == ids.count(second.event_id) == 1


async def a_clue_is_taken_by_one_case_only(registry: Registry) -> None:
    case_id = await file(registry)
    async with registry.store.transaction() as tx:
        clue_id = await tx.next_clue_id(date(2026, 3, 1))
        assert clue_id.startswith("CL-20260301-")
        await tx.insert_clue(
            {
                "clue_id": clue_id,
                "source": "patrol",
                "township": "duizhen",
                "location": "东村",
                "description": "新建房屋",
                "reported_on": date(2026, 3, 1),
            }
        )
    async with registry.store.transaction() as tx:
        assert await tx.take_clue(clue_id, case_id) is True
        assert await tx.take_clue(clue_id, case_id) is False
        assert await tx.take_clue("CL-none", case_id) is False


async def an_update_is_read_back_under_the_lock_and_after_the_commit(registry: Registry) -> None:
    case_id = await file(registry)
    started = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    async with registry.store.transaction() as tx:
        case = await tx.case_for_update(case_id)
        assert case is not None
        changed = replace(
            case,
            status=CaseStatus.penalty_decided,
            cultivated_mu=Decimal("7.25"),
            accountability_started_at=started,
        )
        await tx.update_case(changed)
        assert (await tx.case_for_update(case_id)) is not None
        assert (await tx.case_for_update("RL-none")) is None
    found = await registry.store.get_case(case_id)
    assert found is not None
    row = found[0]
    assert (row.status, row.cultivated_mu) == (CaseStatus.penalty_decided, Decimal("7.25"))
    assert row.accountability_started_at == started
    assert row.township == "duizhen"  # what update_case does not write is kept


async def sign_offs_keep_one_per_body_and_a_void_clears_them(registry: Registry) -> None:
    case_id = await file(registry)
    nr = SignOff(SigningBody.natural_resources, "王", date(2026, 5, 1))
    async with registry.store.transaction() as tx:
        await tx.add_sign_off(case_id, nr)
        await tx.add_sign_off(case_id, replace(nr, verified_on=date(2026, 5, 3)))
        rectified = event("rect")
        await tx.append_record(case_id, "rectification", rectified, {"completed_on": "2026-04-30"})
        await tx.append_record(
            case_id, "rectification", event("r2"), {"completed_on": "2026-04-20"}
        )
    assert await registry.store.restoration_sign_offs(case_id) == [
        replace(nr, verified_on=date(2026, 5, 3))
    ]
    async with registry.store.transaction() as tx:
        assert await tx.rectified_on(case_id) == date(2026, 4, 30)
        assert await tx.rectified_on("RL-none") is None
        voided = await tx.void_sign_offs(case_id, "new works")
    assert [s.verified_on for s in voided] == [date(2026, 5, 3)]
    assert await registry.store.restoration_sign_offs(case_id) == []
    actions = [a for a, c in await registry.audit() if c == case_id]
    assert actions.count("restoration sign-off") == 2
    assert actions.count("restoration sign-off voided") == 1


async def cases_are_listed_by_id_filtered_and_paged(registry: Registry) -> None:
    township = f"t{uuid.uuid4().hex[:8]}"
    ids = [await file(registry, township) for _ in range(3)]
    store = registry.store
    listed = await store.list_cases(township=township, status=None, after=None, limit=2)
    assert [c.case_id for c in listed] == ids[:2]
    rest = await store.list_cases(township=township, status=None, after=ids[1], limit=2)
    assert [c.case_id for c in rest] == ids[2:]
    closed = await store.list_cases(
        township=township, status=CaseStatus.closed, after=None, limit=10
    )
    assert closed == []


CHECKS = [
    a_committed_case_reads_back_as_written_with_its_records_in_order,
    nothing_is_seen_before_the_commit_and_nothing_stays_after_an_exception,
    case_ids_increase_and_a_second_case_under_one_id_is_refused,
    an_idempotency_key_gives_back_its_answer_and_is_saved_once,
    an_event_enqueued_twice_is_kept_once_in_enqueue_order,
    a_clue_is_taken_by_one_case_only,
    an_update_is_read_back_under_the_lock_and_after_the_commit,
    sign_offs_keep_one_per_body_and_a_void_clears_them,
    cases_are_listed_by_id_filtered_and_paged,
]
