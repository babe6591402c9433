"""What the reports need from storage: plain rows, read-only, all from one snapshot.

The rows are filtered by period in the store (for speed) but every rule that decides
whether a row counts is applied again in the report's own module (township, department,
ranking, notice).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime

from services.reports.notice import NoticeSourceRow
from services.reports.outcomes import ResponseRow
from services.reports.periods import Window
from services.reports.ranking import SatelliteCaseRow
from services.reports.township import (
    AccountabilityRow,
    BlockRow,
    ClueRow,
    FiledCaseRow,
    OpenCaseRow,
    RestorationRow,
)
from services.reports.township_targets import TalkRow, TargetRow


class ReportReads(abc.ABC):
    """Reads inside one read-only snapshot, so the figures of one report agree."""

    @abc.abstractmethod
    async def department_tables(self, codes: Sequence[str]) -> list[str]:
        """The departments among `codes` whose tables this database holds."""

    @abc.abstractmethod
    async def clues(self, window: Window, township: str | None) -> list[ClueRow]:
        """Clues reported on a day of the window."""

    @abc.abstractmethod
    async def filed_cases(self, window: Window, township: str | None) -> list[FiledCaseRow]:
        """Cases filed within the window, with their current parcels."""

    @abc.abstractmethod
    async def accountability(self, window: Window, township: str | None) -> list[AccountabilityRow]:
        """Cases whose accountability procedure started within the window."""

    @abc.abstractmethod
    async def blocks(
        self, window: Window, township: str | None, departments: Sequence[str]
    ) -> list[BlockRow]:
        """Blocks of these departments applied or lifted within the window."""

    @abc.abstractmethod
    async def restorations(self, window: Window, township: str | None) -> list[RestorationRow]:
        """Restorations verified on a day of the window."""

    @abc.abstractmethod
    async def open_cases(self, as_of: datetime, township: str | None) -> list[OpenCaseRow]:
        """Cases filed before `as_of` and not ended before it."""

    @abc.abstractmethod
    async def township_targets(self, quarter: str, township: str | None) -> list[TargetRow]:
        """The responsibility targets townships entered for the quarter (e.g. 2026Q3)."""

    @abc.abstractmethod
    async def township_talks(self, window: Window, township: str | None) -> list[TalkRow]:
        """Warning talks requested before the window ends."""

    @abc.abstractmethod
    async def responses(self, window: Window, department: str | None) -> list[ResponseRow]:
        """Requirements made within the window, with their answers."""

    @abc.abstractmethod
    async def satellite_cases(self, first_day: date, last_day: date) -> list[SatelliteCaseRow]:
        """Cases found by satellite imagery enforcement between these days."""

    @abc.abstractmethod
    async def notice_cases(self, case_ids: Sequence[str]) -> list[NoticeSourceRow]:
        """These cases with every record; unknown ids are simply absent."""

    @abc.abstractmethod
    async def decided_or_closed_since(self, since: date) -> list[str]:
        """Ids of cases with a penalty decided or a closure on or after `since`."""


class ReportStore(abc.ABC):
    @abc.abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[ReportReads]: ...
