"""What the reports rely on from a ReportStore: the rows of what the other stores wrote.

The reports own no table, so each check seeds through the write ports of the stores they
read (registry, townships, a department, the feedback tracker) and then reads through one
report snapshot. Townships and department codes are fresh in every check (the PostgreSQL
database is shared by the module), and the rows come in no promised order: checks compare
sets.

Timestamps the database stamps itself (a case's `filed_at`, a record's `recorded_at`) are
read back through the registry's port and used as the window's edges.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.departments.ports import (
    BatchWrites,
    BlockApplied,
    BlockLifted,
    DepartmentStore,
    KnownCase,
    NewCase,
)
from services.errors import DatabaseError
from services.feedback.domain import Requirement
from services.feedback.ports import FeedbackStore, FeedbackWrites, Response
from services.feedback.status import ResponseRow
from services.registry.domain import CaseStatus
from services.registry.ports import CaseRecord, CaseRow
from services.reports import township as rows
from services.reports.notice import NoticeSourceRow, RecordRow
from services.reports.periods import Period, Window
from services.reports.ports import ReportStore
from services.reports.ranking import SatelliteCaseRow
from services.reports.township_targets import TalkRow, TargetRow
from services.townships.domain import QuarterReport, ReportStatus, TalkStatus
from services.townships.ports import TownshipStore
from tests.contracts.registry import YEAR, Registry, case_row, event
from tests.contracts.townships import AT, FIGURES, new_talk, township

TICK = timedelta(microseconds=1)
DAY = timedelta(days=1)
Q2 = Period("2026Q2", date(2026, 4, 1), date(2026, 6, 30)).window(UTC)
EVER = Period("all", date(2000, 1, 1), date(2099, 12, 31)).window(UTC)
FILED_PARCELS = (("permanent_basic_farmland", Decimal("6")),)  # case_row's


@dataclass
class Sources:
    """The stores whose rows the reports read, and the report store over them."""

    registry: Registry
    townships: TownshipStore
    department: Callable[[str], Awaitable[DepartmentStore]]  # its tables made on first call
    feedback: FeedbackStore
    reports: ReportStore


def between(start: datetime, end: datetime) -> Window:
    """The instants [start, end), for the reads that compare timestamps."""
    return Window(start, end, start.date(), end.date())


def department_code() -> str:
    return f"d{uuid.uuid4().hex[:8]}"


async def file_case(sources: Sources, place: str, **changes: Any) -> CaseRow:
    """A committed case (`case_row` with `changes`) as the registry reads it back."""
    async with sources.registry.store.transaction() as tx:
        case_id = await tx.next_case_id(YEAR)
        await tx.insert_case(replace(case_row(case_id, place), **changes))
        await tx.append_record(case_id, "filing", event("filed"), {"case_id": case_id})
    return (await records_of(sources, case_id))[0]


async def records_of(sources: Sources, case_id: str) -> tuple[CaseRow, list[CaseRecord]]:
    found = await sources.registry.store.get_case(case_id)
    assert found is not None
    return found


async def record(sources: Sources, case_id: str, step: str, data: dict[str, Any]) -> CaseRecord:
    """A step recorded on the case, read back with its stamp."""
    async with sources.registry.store.transaction() as tx:
        await tx.append_record(case_id, step, event(step), data)
    return (await records_of(sources, case_id))[1][-1]


async def update(sources: Sources, case_id: str, **changes: Any) -> None:
    async with sources.registry.store.transaction() as tx:
        case = await tx.case_for_update(case_id)
        assert case is not None
        await tx.update_case(replace(case, **changes))


def filed_at(case: CaseRow) -> datetime:
    assert case.filed_at is not None
    return case.filed_at


def among(found: Iterable[Any], ids: set[str]) -> set[Any]:
    """This check's rows (by case id) of a read that is not filtered by township."""
    return {row for row in found if row.case_id in ids}


async def clues_are_those_reported_on_the_days_of_the_window(sources: Sources) -> None:
    here, there = township(), township()
    seeded = [
        (here, Q2.first_day - DAY, "patrol"),
        (here, Q2.first_day, "patrol"),
        (here, Q2.last_day, "report"),
        (here, Q2.last_day + DAY, "patrol"),
        (there, Q2.first_day, "satellite"),
    ]
    async with sources.registry.store.transaction() as tx:
        for place, day, source in seeded:
            clue_id = await tx.next_clue_id(day)
            where = {"township": place, "location": "东村", "description": "新建房屋"}
            await tx.insert_clue(
                {"clue_id": clue_id, "source": source, "reported_on": day, **where}
            )
    inside = {rows.ClueRow(here, "patrol", Q2.first_day), rows.ClueRow(here, "report", Q2.last_day)}
    async with sources.reports.snapshot() as reads:
        assert set(await reads.clues(Q2, here)) == inside
        everywhere = await reads.clues(Q2, None)
        assert {r for r in everywhere if r.township in (here, there)} == {
            *inside,
            rows.ClueRow(there, "satellite", Q2.first_day),
        }


async def filed_cases_are_those_filed_in_the_window_with_their_parcels_now(
    sources: Sources,
) -> None:
    here, there = township(), township()
    case, other = await file_case(sources, here), await file_case(sources, there)
    surveyed = [
        {"land_class": "cultivated", "area_mu": "2.50"},
        {"land_class": "permanent_basic_farmland", "area_mu": "6"},
    ]
    await update(sources, case.case_id, parcels=surveyed)
    at = filed_at(case)
    expected = rows.FiledCaseRow(
        case.case_id,
        here,
        at,
        (("cultivated", Decimal("2.50")), ("permanent_basic_farmland", Decimal("6"))),
    )
    async with sources.reports.snapshot() as reads:
        assert await reads.filed_cases(between(at, at + TICK), here) == [expected]
        assert await reads.filed_cases(between(at - DAY, at), here) == []
        assert await reads.filed_cases(between(at + TICK, at + DAY), here) == []
        assert await reads.filed_cases(EVER, there) == [
            rows.FiledCaseRow(other.case_id, there, filed_at(other), FILED_PARCELS)
        ]
        assert among(await reads.filed_cases(EVER, None), {case.case_id, other.case_id}) == {
            expected,
            rows.FiledCaseRow(other.case_id, there, filed_at(other), FILED_PARCELS),
        }


async def accountability_counts_in_the_window_it_started(sources: Sources) -> None:
    here = township()
    started = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    case, _never = await file_case(sources, here), await file_case(sources, here)
    await update(sources, case.case_id, accountability_started_at=started)
    async with sources.reports.snapshot() as reads:
        expected = [rows.AccountabilityRow(case.case_id, here, started)]
        assert await reads.accountability(between(started, started + TICK), here) == expected
        assert await reads.accountability(between(started - DAY, started), here) == []
        assert await reads.accountability(between(started + TICK, started + DAY), here) == []
        assert await reads.accountability(EVER, here) == expected
        assert await reads.accountability(EVER, township()) == []
        assert among(await reads.accountability(EVER, None), {case.case_id}) == set(expected)


async def restorations_are_read_by_the_day_they_were_verified(sources: Sources) -> None:
    here, there = township(), township()
    case, other = await file_case(sources, here), await file_case(sources, there)
    await record(sources, case.case_id, "restoration", {"verified_on": "2026-06-30"})
    await record(sources, case.case_id, "restoration", {"verified_on": "2026-07-01"})
    await record(sources, case.case_id, "rectification", {"verified_on": "2026-06-01"})
    await record(sources, case.case_id, "restoration", {"note": "no day"})
    await record(sources, other.case_id, "restoration", {"verified_on": "2026-04-01"})
    in_q2 = rows.RestorationRow(case.case_id, here, date(2026, 6, 30))
    q3 = Period("2026Q3", date(2026, 7, 1), date(2026, 9, 30)).window(UTC)
    async with sources.reports.snapshot() as reads:
        assert await reads.restorations(Q2, here) == [in_q2]
        assert await reads.restorations(q3, here) == [
            rows.RestorationRow(case.case_id, here, date(2026, 7, 1))
        ]
        assert among(await reads.restorations(Q2, None), {case.case_id, other.case_id}) == {
            in_q2,
            rows.RestorationRow(other.case_id, there, date(2026, 4, 1)),
        }


async def a_case_is_open_from_its_filing_until_its_first_ending_step(sources: Sources) -> None:
    here, there = township(), township()
    still, ended = await file_case(sources, here), await file_case(sources, here)
    elsewhere = await file_case(sources, there)
    await record(sources, ended.case_id, "penalty", {"decided_on": "2026-05-01"})
    closed_at = (await record(sources, ended.case_id, "closure", {})).recorded_at
    await record(sources, ended.case_id, "restoration", {"verified_on": "2026-05-03"})
    open_still = rows.OpenCaseRow(still.case_id, here, filed_at(still), None)
    open_ended = rows.OpenCaseRow(ended.case_id, here, filed_at(ended), closed_at)
    async with sources.reports.snapshot() as reads:
        assert open_still not in await reads.open_cases(filed_at(still), here)
        assert open_still in await reads.open_cases(filed_at(still) + TICK, here)
        assert set(await reads.open_cases(closed_at, here)) == {open_still, open_ended}
        assert await reads.open_cases(closed_at + TICK, here) == [open_still]
        assert await reads.open_cases(closed_at + TICK, there) == [
            rows.OpenCaseRow(elsewhere.case_id, there, filed_at(elsewhere), None)
        ]
        ours = {still.case_id, ended.case_id, elsewhere.case_id}
        assert {r.case_id for r in among(await reads.open_cases(closed_at, None), ours)} == ours


async def targets_are_those_entered_for_the_quarter(sources: Sources) -> None:
    here, there = township(), township()
    submitted = QuarterReport(here, "2026Q1", FIGURES, ReportStatus.submitted, "乡镇", AT)
    async with sources.townships.transaction() as tx:
        await tx.save_report(submitted)
        await tx.save_report(replace(submitted, quarter="2026Q2", status=ReportStatus.draft))
        await tx.save_report(replace(submitted, township=there, status=ReportStatus.received))
    figures = FIGURES.model_dump(mode="json")
    async with sources.reports.snapshot() as reads:
        assert await reads.township_targets("2026Q1", here) == [
            TargetRow(here, "submitted", figures)
        ]
        assert await reads.township_targets("2026Q2", here) == [TargetRow(here, "draft", figures)]
        assert await reads.township_targets("2026Q3", here) == []
        everywhere = await reads.township_targets("2026Q1", None)
        assert {(r.township, r.status) for r in everywhere if r.township in (here, there)} == {
            (here, "submitted"),
            (there, "received"),
        }


async def talks_are_those_requested_before_the_window_ends(sources: Sources) -> None:
    here, there = township(), township()
    store = sources.townships
    early = await new_talk(store, here, datetime(2025, 1, 1, tzinfo=UTC))
    last = await new_talk(store, here, Q2.end - TICK)
    late = await new_talk(store, here, Q2.end)
    other = await new_talk(store, there, Q2.start)
    days = (date(2025, 2, 1), date(2025, 6, 30), date(2025, 6, 1))  # talk, deadline, done
    async with store.transaction() as tx:
        await tx.save_talk(
            replace(
                early,
                status=TalkStatus.rectified,
                talk_on=days[0],
                rectify_by=days[1],
                rectified_on=days[2],
            )
        )
    expected = {
        TalkRow(early.talk_id, here, "rectified", early.reason, early.requested_at, *days),
        TalkRow(last.talk_id, here, "requested", last.reason, Q2.end - TICK, None, None, None),
    }
    async with sources.reports.snapshot() as reads:
        assert set(await reads.township_talks(Q2, here)) == expected
        everywhere = {t.talk_id for t in await reads.township_talks(Q2, None)}
        assert {early.talk_id, last.talk_id, other.talk_id} <= everywhere
        assert late.talk_id not in everywhere


async def satellite_cases_are_those_found_by_satellite_in_the_days(sources: Sources) -> None:
    here, there = township(), township()
    first, last = date(2026, 1, 1), date(2026, 3, 31)
    on_first = await file_case(sources, here, source="satellite", found_on=first)
    on_last = await file_case(
        sources,
        there,
        source="satellite",
        found_on=last,
        basic_farmland_mu=Decimal("0"),
        cultivated_mu=Decimal("12.5"),
    )
    after = await file_case(sources, here, source="satellite", found_on=last + DAY)
    patrolled = await file_case(sources, here, found_on=first)
    await record(sources, on_last.case_id, "revocation", {"reason": "撤销立案"})
    ours = {c.case_id for c in (on_first, on_last, after, patrolled)}
    async with sources.reports.snapshot() as reads:
        assert among(await reads.satellite_cases(first, last), ours) == {
            SatelliteCaseRow(on_first.case_id, here, first, Decimal("6"), Decimal("6.5"), False),
            SatelliteCaseRow(on_last.case_id, there, last, Decimal("0"), Decimal("12.5"), True),
        }


async def a_notice_case_comes_with_every_record_in_order(sources: Sources) -> None:
    here = township()
    case = await file_case(sources, here)
    await record(sources, case.case_id, "penalty", {"decided_on": "2026-03-05", "fine": "100.50"})
    await update(
        sources, case.case_id, status=CaseStatus.penalty_decided, accountability_started_at=AT
    )
    records = (await records_of(sources, case.case_id))[1]
    expected = NoticeSourceRow(
        case.case_id,
        here,
        "penalty_decided",
        "enterprise",
        "91140000MA0000000X",
        "某公司",
        FILED_PARCELS,
        Decimal("6"),
        Decimal("6.5"),
        "building",
        "patrol",
        date(2026, 3, 1),
        True,
        records=tuple(RecordRow(r.seq, r.step, r.data, r.recorded_at) for r in records),
    )
    async with sources.reports.snapshot() as reads:
        assert await reads.notice_cases([case.case_id, "RL-none", case.case_id]) == [expected]
        assert [r.step for r in expected.records] == ["filing", "penalty"]
        assert await reads.notice_cases([]) == []


async def cases_decided_or_closed_since_a_day_are_listed_once_by_id(sources: Sources) -> None:
    here = township()
    on_the_day, twice, earlier, other = [await file_case(sources, here) for _ in range(4)]
    await record(sources, on_the_day.case_id, "penalty", {"decided_on": "2026-08-01"})
    await record(sources, twice.case_id, "penalty", {"decided_on": "2026-08-02"})
    await record(sources, twice.case_id, "closure", {"closed_on": "2026-09-01"})
    await record(sources, earlier.case_id, "penalty", {"decided_on": "2026-07-31"})
    await record(sources, earlier.case_id, "closure", {"closed_on": "2026-07-31"})
    await record(sources, other.case_id, "rectification", {"decided_on": "2026-08-05"})
    ours = {c.case_id for c in (on_the_day, twice, earlier, other)}
    async with sources.reports.snapshot() as reads:
        found = await reads.decided_or_closed_since(date(2026, 8, 1))
        assert found == sorted(set(found))
        assert [c for c in found if c in ours] == sorted([on_the_day.case_id, twice.case_id])
        later = await reads.decided_or_closed_since(date(2026, 8, 2))
        assert [c for c in later if c in ours] == [twice.case_id]


async def department_tables_are_those_this_database_holds_in_the_order_asked(
    sources: Sources,
) -> None:
    first, second, missing = department_code(), department_code(), department_code()
    await sources.department(second)
    await sources.department(first)
    async with sources.reports.snapshot() as reads:
        assert await reads.department_tables([missing, first, second]) == [first, second]
        assert await reads.department_tables([missing]) == []
    with pytest.raises(DatabaseError):
        async with sources.reports.snapshot() as reads:
            await reads.blocks(EVER, None, [missing])


def known(case_id: str, place: str) -> KnownCase:
    return KnownCase(case_id, place, "enterprise", "91140000MA0000000X", "某公司")


async def blocks_are_those_applied_or_lifted_in_the_window(sources: Sources) -> None:
    here, there = township(), township()
    code, other_code = department_code(), department_code()
    cases = [known(f"RL-{n}", here) for n in range(4)] + [known("RL-4", there)]
    start, end = Q2.start, Q2.end
    writes = BatchWrites(
        cases=[NewCase(case, f"filed-{case.case_id}") for case in cases],
        applied=[
            BlockApplied("applied_at_start", cases[0], "basis", start, "e0"),
            BlockApplied("lifted_in", cases[1], "basis", start - DAY, "e1"),
            BlockApplied("lifted_at_end", cases[2], "basis", start - DAY, "e2"),
            BlockApplied("applied_at_end", cases[3], "basis", end, "e3"),
            BlockApplied("elsewhere", cases[4], "basis", end - TICK, "e4"),
        ],
        lifted=[
            BlockLifted("lifted_in", cases[1].case_id, "restored", end - TICK, "l1"),
            BlockLifted("lifted_at_end", cases[2].case_id, "restored", end, "l2"),
        ],
        outgoing=[],
    )
    for store in (await sources.department(code), await sources.department(other_code)):
        async with store.transaction() as tx:
            await tx.write(writes)
    here_rows = {
        rows.BlockRow(code, "applied_at_start", "RL-0", here, start, None),
        rows.BlockRow(code, "lifted_in", "RL-1", here, start - DAY, end - TICK),
    }
    there_row = rows.BlockRow(code, "elsewhere", "RL-4", there, end - TICK, None)
    async with sources.reports.snapshot() as reads:
        assert set(await reads.blocks(Q2, here, [code])) == here_rows
        assert set(await reads.blocks(Q2, None, [code])) == {*here_rows, there_row}
        both = await reads.blocks(Q2, there, [code, other_code])
        assert set(both) == {there_row, replace(there_row, department=other_code)}
        assert await reads.blocks(Q2, here, []) == []


async def responses_are_the_requirements_made_in_the_window_with_their_answers(
    sources: Sources,
) -> None:
    owing, other = department_code(), department_code()
    case_id, start, end = f"RL-{uuid.uuid4().hex[:8]}", Q2.start, Q2.end
    answered = start + timedelta(hours=1)
    made = {"at_start": start, "before_end": end - TICK, "at_end": end, "before": start - TICK}
    owed = [Requirement(case_id, owing, m, "apply", at, at + DAY, m) for m, at in made.items()]
    refused = Requirement(case_id, other, "refused", "apply", start, start + DAY, "refused")
    async with sources.feedback.transaction() as tx:
        await tx.record(
            FeedbackWrites(
                required=[*owed, refused],
                responses=[
                    Response(*owed[0].key, answered, "a1", answers=owed[0].required_by),
                    Response(*refused.key, answered, "a2", answers=refused.required_by, error="no"),
                    Response(case_id, owing, "never_required", "apply", answered, "a3"),
                ],
            )
        )

    def row(r: Requirement, done_at: datetime | None, failed_at: datetime | None) -> ResponseRow:
        columns = ("case_id", "department", "measure", "action", "required_at", "due_at")
        return ResponseRow(
            **{c: getattr(r, c) for c in columns}, done_at=done_at, failed_at=failed_at
        )

    in_window = {row(owed[0], answered, None), row(owed[1], None, None)}
    async with sources.reports.snapshot() as reads:
        assert set(await reads.responses(Q2, owing)) == in_window
        assert await reads.responses(Q2, other) == [row(refused, None, answered)]
        ours = {r for r in await reads.responses(Q2, None) if r.case_id == case_id}
        assert ours == {*in_window, row(refused, None, answered)}


async def one_snapshot_does_not_see_what_commits_after_its_first_read(sources: Sources) -> None:
    here, code = township(), department_code()
    department = await sources.department(code)
    first = await file_case(sources, here)
    async with sources.reports.snapshot() as reads:
        assert [r.case_id for r in await reads.filed_cases(EVER, here)] == [first.case_id]
        later = await file_case(sources, here)
        case = known(later.case_id, here)
        async with department.transaction() as tx:
            block = BlockApplied("measure", case, "basis", Q2.start, "e")
            await tx.write(BatchWrites([NewCase(case, "filed")], [block], [], []))
        assert [r.case_id for r in await reads.filed_cases(EVER, here)] == [first.case_id]
        assert await reads.notice_cases([later.case_id]) == []
        assert await reads.blocks(EVER, here, [code]) == []
    async with sources.reports.snapshot() as reads:
        seen = {r.case_id for r in await reads.filed_cases(EVER, here)}
        assert seen == {first.case_id, later.case_id}
        assert [r.case_id for r in await reads.blocks(EVER, here, [code])] == [later.case_id]


CHECKS = [
    clues_are_those_reported_on_the_days_of_the_window,
    filed_cases_are_those_filed_in_the_window_with_their_parcels_now,
    accountability_counts_in_the_window_it_started,
    restorations_are_read_by_the_day_they_were_verified,
    a_case_is_open_from_its_filing_until_its_first_ending_step,
    targets_are_those_entered_for_the_quarter,
    talks_are_those_requested_before_the_window_ends,
    satellite_cases_are_those_found_by_satellite_in_the_days,
    a_notice_case_comes_with_every_record_in_order,
    cases_decided_or_closed_since_a_day_are_listed_once_by_id,
    department_tables_are_those_this_database_holds_in_the_order_asked,
    blocks_are_those_applied_or_lifted_in_the_window,
    responses_are_the_requirements_made_in_the_window_with_their_answers,
    one_snapshot_does_not_see_what_commits_after_its_first_read,
]
