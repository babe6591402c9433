"""An in-memory ReportStore reading what the other fakes committed.

The reports own no table: they read the registry's cases, records and clues, the
townships' talks and quarter reports, each department's blocks and the feedback
tracker's responses. So this fake derives its rows from those fakes' committed state,
and a test seeds it, as it seeds PostgreSQL, through their write ports.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.errors import DatabaseError
from services.registry.ports import CaseRecord, CaseRow
from services.reports import township as rows
from services.reports.notice import NoticeSourceRow, RecordRow
from services.reports.outcomes import ResponseRow
from services.reports.periods import Window
from services.reports.ports import ReportReads, ReportStore
from services.reports.ranking import SatelliteCaseRow
from services.reports.township_targets import TalkRow, TargetRow
from tests.fakes.departments import MemoryState, MemoryStore
from tests.fakes.feedback import FakeFeedbackStore
from tests.fakes.registry import FakeRegistryStore, RegistryState
from tests.fakes.snapshots import as_json
from tests.fakes.townships import FakeTownshipStore, TownshipState

# What a notice row reads from `cases` as it is stored.
NOTICE_COLUMNS = (
    "case_id",
    "township",
    "basic_farmland_mu",
    "cultivated_mu",
    "violation_kind",
    "source",
    "found_on",
)


@dataclass(frozen=True)
class Snapshot:
    """Everything the reports read, as committed when the snapshot began."""

    registry: RegistryState
    townships: TownshipState
    departments: dict[str, MemoryState]
    responses: list[ResponseRow]


def _in(township: str | None, row_township: str) -> bool:
    return township is None or row_township == township


def _day(value: Any) -> date | None:
    """A jsonb field read `::date`: absent is NULL, a text that is no date fails."""
    return None if value is None else date.fromisoformat(str(value))


def _decided_or_closed_on(record: CaseRecord) -> date | None:
    """The day a penalty was decided or a case closed, from the record's data."""
    field = {"penalty": "decided_on", "closure": "closed_on"}.get(record.step)
    return None if field is None else _day(record.data.get(field))


def _parcels(case: CaseRow) -> tuple[tuple[str, Decimal], ...]:
    return tuple((str(p["land_class"]), Decimal(str(p["area_mu"]))) for p in case.parcels)


def _notice_row(case: CaseRow, records: Iterable[CaseRecord]) -> NoticeSourceRow:
    """The case's columns under their own names, its subject split into three columns."""
    subject: dict[str, Any] = {
        f"subject_{key}": case.subject[key] for key in ("kind", "id", "name")
    }
    return NoticeSourceRow(
        **{column: getattr(case, column) for column in NOTICE_COLUMNS},
        **subject,
        status=str(case.status),
        parcels=_parcels(case),
        accountability_started=case.accountability_started_at is not None,
        records=tuple(RecordRow(r.seq, r.step, r.data, r.recorded_at) for r in records),
    )


class FakeReportReads(ReportReads):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.cases = snapshot.registry.cases

    def _records(self, case_id: str) -> list[CaseRecord]:
        return self.snapshot.registry.records.get(case_id, [])

    def _filed(self) -> Iterable[tuple[CaseRow, datetime]]:
        for case in self.cases.values():
            assert case.filed_at is not None, "the store stamps filed_at"
            yield case, case.filed_at

    async def department_tables(self, codes: Sequence[str]) -> list[str]:
        return [code for code in codes if code in self.snapshot.departments]

    async def clues(self, window: Window, township: str | None) -> list[rows.ClueRow]:
        return [
            rows.ClueRow(clue["township"], clue["source"], clue["reported_on"])
            for clue in self.snapshot.registry.clues.values()
            if window.holds_day(clue["reported_on"]) and _in(township, clue["township"])
        ]

    async def filed_cases(self, window: Window, township: str | None) -> list[rows.FiledCaseRow]:
        return [
            rows.FiledCaseRow(case.case_id, case.township, filed_at, _parcels(case))
            for case, filed_at in self._filed()
            if window.holds(filed_at) and _in(township, case.township)
        ]

    async def accountability(
        self, window: Window, township: str | None
    ) -> list[rows.AccountabilityRow]:
        return [
            rows.AccountabilityRow(case.case_id, case.township, case.accountability_started_at)
            for case in self.cases.values()
            if case.accountability_started_at is not None
            and window.holds(case.accountability_started_at)
            and _in(township, case.township)
        ]

    async def blocks(
        self, window: Window, township: str | None, departments: Sequence[str]
    ) -> list[rows.BlockRow]:
        found: list[rows.BlockRow] = []
        for code in departments:
            state = self.snapshot.departments.get(code)
            if state is None:
                raise DatabaseError(f'relation "dept_{code}.blocks" does not exist')
            for block in state.blocks:
                case = state.cases[block.case_id]  # a foreign key: the department knows it
                if (window.holds(block.applied_at) or window.holds(block.lifted_at)) and _in(
                    township, case.township
                ):
                    found.append(
                        rows.BlockRow(
                            code,
                            block.measure,
                            block.case_id,
                            case.township,
                            block.applied_at,
                            block.lifted_at,
                        )
                    )
        return found

    async def restorations(self, window: Window, township: str | None) -> list[rows.RestorationRow]:
        return [
            rows.RestorationRow(case.case_id, case.township, verified_on)
            for case in self.cases.values()
            if _in(township, case.township)
            for record in self._records(case.case_id)
            if record.step == "restoration"
            and (verified_on := _day(record.data.get("verified_on"))) is not None
            and window.holds_day(verified_on)
        ]

    async def open_cases(self, as_of: datetime, township: str | None) -> list[rows.OpenCaseRow]:
        found = []
        for case, filed_at in self._filed():
            ended_at = min(
                (r.recorded_at for r in self._records(case.case_id) if r.step in rows.ENDING_STEPS),
                default=None,
            )
            if (
                filed_at < as_of
                and _in(township, case.township)
                and (ended_at is None or ended_at >= as_of)
            ):
                found.append(rows.OpenCaseRow(case.case_id, case.township, filed_at, ended_at))
        return found

    async def township_targets(self, quarter: str, township: str | None) -> list[TargetRow]:
        return [
            TargetRow(r.township, r.status.value, as_json(r.figures.model_dump(mode="json")))
            for (place, entered_for), r in self.snapshot.townships.reports.items()
            if entered_for == quarter and _in(township, place)
        ]

    async def township_talks(self, window: Window, township: str | None) -> list[TalkRow]:
        return [
            TalkRow(
                t.talk_id,
                t.township,
                t.status.value,
                t.reason,
                t.requested_at,
                t.talk_on,
                t.rectify_by,
                t.rectified_on,
            )
            for t in self.snapshot.townships.talks.values()
            if t.requested_at < window.end and _in(township, t.township)
        ]

    async def responses(self, window: Window, department: str | None) -> list[ResponseRow]:
        return [
            replace(row, overdue_at=None, reference=None, error=None)  # the columns it selects
            for row in self.snapshot.responses
            if window.holds(row.required_at)
            and row.due_at is not None
            and (department is None or row.department == department)
        ]

    async def satellite_cases(self, first_day: date, last_day: date) -> list[SatelliteCaseRow]:
        return [
            SatelliteCaseRow(
                case.case_id,
                case.township,
                case.found_on,
                case.basic_farmland_mu,
                case.cultivated_mu,
                revoked=any(r.step == "revocation" for r in self._records(case.case_id)),
            )
            for case in self.cases.values()
            if case.source == "satellite" and first_day <= case.found_on <= last_day
        ]

    async def notice_cases(self, case_ids: Sequence[str]) -> list[NoticeSourceRow]:
        return [
            _notice_row(case, self._records(case.case_id))
            for case_id in dict.fromkeys(case_ids)  # `= ANY(...)`: each case once
            if (case := self.cases.get(case_id)) is not None
        ]

    async def decided_or_closed_since(self, since: date) -> list[str]:
        return sorted(
            {
                case_id
                for case_id, records in self.snapshot.registry.records.items()
                for record in records
                if (day := _decided_or_closed_on(record)) is not None and day >= since
            }
        )


@dataclass
class FakeReportStore(ReportStore):
    """Reads the committed state of these fakes. `departments` are the departments whose
    tables the database holds (by code), shared with the test that adds to it."""

    registry: FakeRegistryStore
    townships: FakeTownshipStore
    feedback: FakeFeedbackStore
    departments: dict[str, MemoryStore] = field(default_factory=dict)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[ReportReads]:
        """A copy taken at the start: what commits later is not seen (REPEATABLE READ)."""
        snapshot = Snapshot(
            self.registry.state,
            self.townships.state,
            {code: store.state for code, store in self.departments.items()},
            [row.seen() for row in self.feedback.state.rows.values()],
        )
        yield FakeReportReads(copy.deepcopy(snapshot))
