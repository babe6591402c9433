"""What township accountability needs from storage: its own records, written in one
transaction with the idempotency key, and read-only figures from the registry's cases."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime

from services.idempotency import IdempotencyKeys
from services.townships.domain import BusFigures, Notice, QuarterReport, Talk, Veto


@dataclass(frozen=True)
class DaySpan:
    """Local days from `first_day` to `last_day`, and the instants [start, end) they cover."""

    first_day: date
    last_day: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class QuarterSpan(DaySpan):
    """A quarter's days; `as_of` is when its open cases are counted."""

    as_of: datetime


class TownshipTransaction(IdempotencyKeys):
    """Reads and writes inside one transaction (read-only when opened so)."""

    @abc.abstractmethod
    async def next_talk_id(self, year: int) -> str: ...

    @abc.abstractmethod
    async def talk(self, talk_id: str, *, for_update: bool = False) -> Talk | None: ...

    @abc.abstractmethod
    async def save_talk(self, talk: Talk) -> None:
        """Insert or replace the talk."""

    @abc.abstractmethod
    async def talks(self, township: str | None, span: DaySpan) -> list[Talk]:
        """Talks requested within the span's instants, or whose deadline falls on one of
        its days (one township's, or all)."""

    @abc.abstractmethod
    async def next_notice_id(self, year: int) -> str: ...

    @abc.abstractmethod
    async def add_notice(self, notice: Notice) -> None: ...

    @abc.abstractmethod
    async def notices(self, year: int) -> list[Notice]: ...

    @abc.abstractmethod
    async def veto(self, township: str, year: int) -> Veto | None: ...

    @abc.abstractmethod
    async def add_veto(self, veto: Veto) -> None: ...

    @abc.abstractmethod
    async def vetoes(self, year: int) -> list[Veto]: ...

    @abc.abstractmethod
    async def report(
        self, township: str, quarter: str, *, for_update: bool = False
    ) -> QuarterReport | None: ...

    @abc.abstractmethod
    async def save_report(self, report: QuarterReport) -> None:
        """Insert or replace the township's report for its quarter."""

    @abc.abstractmethod
    async def reports(self, quarters: Sequence[str]) -> list[QuarterReport]: ...

    @abc.abstractmethod
    async def bus_figures(self, codes: Sequence[str], span: QuarterSpan) -> BusFigures:
        """The registry's figures for cases of these township codes (a township and the
        abolished units that count under it) in the quarter."""


class TownshipStore(abc.ABC):
    @abc.abstractmethod
    def transaction(
        self, *, readonly: bool = False
    ) -> AbstractAsyncContextManager[TownshipTransaction]: ...
