"""What township accountability relies on from a TownshipStore (its own records; the
registry's figures, `bus_figures`, are read from cases and checked in the integration
suite tests/integration/test_township_accountability.py)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from services.errors import DatabaseError
from services.idempotency import StoredResponse
from services.townships.domain import (
    TARGET_LABELS,
    Notice,
    QuarterFigures,
    QuarterReport,
    ReportStatus,
    Talk,
    TalkStatus,
    Veto,
)
from services.townships.ports import DaySpan, TownshipStore
from tests.contracts.registry import Boom

AT = datetime(2026, 4, 2, 2, 0, tzinfo=UTC)
FIGURES = QuarterFigures.model_validate(
    {
        "targets": {name: {"target": "100", "achieved": "100.5"} for name in TARGET_LABELS},
        "findings": {
            "cultivated_occupied_mu": "12.5",
            "basic_farmland_occupied_mu": "0",
            "restored_mu": "0",
            "open_cases": 1,
        },
        "note": "第一季度",
    }
)


def township() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


async def new_talk(store: TownshipStore, place: str, at: datetime = AT) -> Talk:
    async with store.transaction() as tx:
        talk = Talk(await tx.next_talk_id(2026), place, "耕地流失", ("RL-1", "RL-2"), "王", at)
        await tx.save_talk(talk)
    return talk


async def a_talk_reads_back_and_saving_it_again_changes_only_its_progress(
    store: TownshipStore,
) -> None:
    talk = await new_talk(store, township())
    approved = replace(
        talk,
        status=TalkStatus.approved,
        decided_by="市政府",
        decided_at=AT,
        talk_on=date(2026, 4, 10),
        rectify_by=date(2026, 6, 30),
        reason="rewritten",  # not a column the decision writes
    )
    async with store.transaction() as tx:
        assert await tx.talk(talk.talk_id, for_update=True) == talk
        await tx.save_talk(approved)
    async with store.transaction(readonly=True) as tx:
        assert await tx.talk(talk.talk_id) == replace(approved, reason=talk.reason)
        assert await tx.talk("WT-none") is None


async def talks_are_those_requested_in_the_span_or_due_in_its_days(store: TownshipStore) -> None:
    place = township()
    before = await new_talk(store, place, datetime(2025, 12, 1, tzinfo=UTC))
    inside = await new_talk(store, place, datetime(2026, 1, 5, tzinfo=UTC))
    due = replace(before, status=TalkStatus.approved, rectify_by=date(2026, 3, 31))
    outside = await new_talk(store, place, datetime(2025, 11, 1, tzinfo=UTC))
    async with store.transaction() as tx:
        await tx.save_talk(due)
        found = await tx.talks(
            place,
            DaySpan(
                date(2026, 1, 1),
                date(2026, 3, 31),
                datetime(2026, 1, 1, tzinfo=UTC),
                datetime(2026, 4, 1, tzinfo=UTC),
            ),
        )
    assert [t.talk_id for t in found] == [before.talk_id, inside.talk_id]
    assert outside.talk_id not in {t.talk_id for t in found}


async def notices_are_numbered_and_kept_by_year(store: TownshipStore) -> None:
    place = township()
    async with store.transaction() as tx:
        first = Notice(await tx.next_notice_id(2026), place, 2026, "praise", "表扬", "王", AT)
        second = Notice(await tx.next_notice_id(2026), place, 2025, "criticism", "批评", "王", AT)
        await tx.add_notice(first)
        await tx.add_notice(second)
    assert first.notice_id.startswith("TB-2026-") and second.notice_id > first.notice_id
    async with store.transaction() as tx:
        assert first in await tx.notices(2026)
        assert second not in await tx.notices(2026)
    with pytest.raises(DatabaseError):
        async with store.transaction() as tx:
            await tx.add_notice(replace(first, text="again"))


async def one_veto_per_township_and_year(store: TownshipStore) -> None:
    place = township()
    veto = Veto(place, 2026, "重大问题", "王", AT)
    async with store.transaction() as tx:
        assert await tx.veto(place, 2026) is None
        await tx.add_veto(veto)
    with pytest.raises(DatabaseError):
        async with store.transaction() as tx:
            await tx.add_veto(replace(veto, reason="again"))
    async with store.transaction() as tx:
        assert await tx.veto(place, 2026) == veto
        assert veto in await tx.vetoes(2026)
        assert veto not in await tx.vetoes(2025)


async def a_quarter_report_is_replaced_in_place(store: TownshipStore) -> None:
    place = township()
    draft = QuarterReport(place, "2026Q1", FIGURES, ReportStatus.draft, "乡镇", AT)
    submitted = replace(draft, status=ReportStatus.submitted, submitted_by="乡镇", submitted_at=AT)
    async with store.transaction() as tx:
        assert await tx.report(place, "2026Q1", for_update=True) is None
        await tx.save_report(draft)
        await tx.save_report(replace(draft, quarter="2026Q2"))
    async with store.transaction() as tx:
        await tx.save_report(submitted)
    async with store.transaction(readonly=True) as tx:
        assert await tx.report(place, "2026Q1") == submitted
        ours = [r for r in await tx.reports(["2026Q1", "2026Q2"]) if r.township == place]
        assert [(r.quarter, r.status) for r in ours] == [
            ("2026Q1", ReportStatus.submitted),
            ("2026Q2", ReportStatus.draft),
        ]
        assert all(r.township != place for r in await tx.reports(["2026Q3"]))


async def a_key_keeps_its_answer_and_a_failed_transaction_keeps_nothing(
    store: TownshipStore,
) -> None:
    key, place = f"key-{uuid.uuid4()}", township()
    answer = StoredResponse("request_talk", "h", 200, {"talk_id": "WT-1"})
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            await tx.save_idempotent_response(key, answer)
            await tx.add_veto(Veto(place, 2026, "重大问题", "王", AT))
            raise Boom
    async with store.transaction() as tx:
        assert await tx.claim_idempotency_key(key) is None
        assert await tx.veto(place, 2026) is None
        await tx.save_idempotent_response(key, answer)
    async with store.transaction() as tx:
        assert await tx.claim_idempotency_key(key) == answer


async def a_read_only_transaction_refuses_to_write(store: TownshipStore) -> None:
    place = township()
    with pytest.raises(DatabaseError):
        async with store.transaction(readonly=True) as tx:
            await tx.add_veto(Veto(place, 2026, "重大问题", "王", AT))
    async with store.transaction(readonly=True) as tx:
        assert await tx.veto(place, 2026) is None


CHECKS = [
    a_talk_reads_back_and_saving_it_again_changes_only_its_progress,
    talks_are_those_requested_in_the_span_or_due_in_its_days,
    notices_are_numbered_and_kept_by_year,
    one_veto_per_township_and_year,
    a_quarter_report_is_replaced_in_place,
    a_key_keeps_its_answer_and_a_failed_transaction_keeps_nothing,
    a_read_only_transaction_refuses_to_write,
]
