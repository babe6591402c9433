"""The township-accountability service behind the HTTP API: check the caller and the input,
apply the pure rules, write once per idempotency key in one transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from events.models import DecimalStr
from services.access import Principal, Role
from services.city_time import CityClock
from services.errors import InvalidInput
from services.idempotency import once
from services.townships.directory import Township, TownshipAlias, check_current
from services.townships.domain import (
    EARLIEST_YEAR,
    Assessment,
    BusFigures,
    Finding,
    Notice,
    NoticeDetails,
    NoticeView,
    NotYours,
    QuarterFigures,
    QuarterReport,
    RectificationReport,
    ReportStatus,
    Talk,
    TalkDecision,
    TalkRequest,
    TalkView,
    Veto,
    VetoDetails,
    VetoView,
    YearRecords,
    assessment,
    check_report,
    decide_talk,
    enter_report,
    new_talk,
    quarter_days,
    receive_report,
    record_rectification,
    submit_report,
    talk_view,
    year_quarters,
)
from services.townships.domain import NotFound as TownshipNotFound
from services.townships.domain import StateError as TownshipStateError
from services.townships.ports import DaySpan, QuarterSpan, TownshipStore, TownshipTransaction


class BusFiguresView(BaseModel):
    model_config = ConfigDict(frozen=True)

    cases_filed: int
    cultivated_occupied_mu: DecimalStr
    basic_farmland_occupied_mu: DecimalStr
    restored_mu: DecimalStr
    open_cases: int
    open_cases_as_of: datetime


class QuarterView(BaseModel):
    """A township's quarterly report with the bus's figures beside the entered ones and
    every unmet target or discrepancy named."""

    model_config = ConfigDict(frozen=True)

    township: str
    township_name: str
    quarter: str
    status: ReportStatus | Literal["missing"]
    figures: QuarterFigures | None
    entered_by: str | None = None
    entered_at: datetime | None = None
    submitted_by: str | None = None
    submitted_at: datetime | None = None
    received_by: str | None = None
    received_at: datetime | None = None
    bus: BusFiguresView
    findings: list[Finding]


V = TypeVar("V", bound=BaseModel)
# What a command does to a quarter's report (none yet, or as it stands), given the
# quarter's label and the time.
Step = Callable[[QuarterReport | None, str, datetime], QuarterReport]


def _handing(transition: Callable[..., QuarterReport], by: Principal) -> Step:
    """A hand-over of the report (submitted, received) as a step, made by `by`."""

    def step(existing: QuarterReport | None, label: str, now: datetime) -> QuarterReport:
        return transition(existing, by=by.name, at=now)

    return step


@dataclass(eq=False)
class Townships(CityClock):
    store: TownshipStore
    _: KW_ONLY
    townships: Mapping[str, Township]
    aliases: Mapping[str, TownshipAlias]
    names: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = {code: township.name for code, township in self.townships.items()}

    # --- warning talks --------------------------------------------------------------

    async def request_talk(
        self, request: TalkRequest, by: Principal, key: str | None = None
    ) -> TalkView:
        check_current(request.township, self.townships, self.aliases)
        now = self.clock()

        async def write(tx: TownshipTransaction) -> TalkView:
            talk_id = await tx.next_talk_id(self.today(now).year)
            talk = new_talk(talk_id, request, by=by.name, at=now, known=self.townships)
            return await self._save_talk(tx, talk, now)

        return await self._once("request_talk", request, key, TalkView, write)

    async def decide_talk(
        self, talk_id: str, decision: TalkDecision, by: Principal, key: str | None = None
    ) -> TalkView:
        now = self.clock()

        async def write(tx: TownshipTransaction) -> TalkView:
            talk = await self._talk(tx, talk_id)
            decided = decide_talk(talk, decision, by=by.name, at=now, today=self.today(now))
            return await self._save_talk(tx, decided, now)

        return await self._once(f"decide_talk:{talk_id}", decision, key, TalkView, write)

    async def report_rectification(
        self,
        township: str,
        talk_id: str,
        report: RectificationReport,
        by: Principal,
        key: str | None = None,
    ) -> TalkView:
        check_current(township, self.townships, self.aliases)
        self._own(by, township)
        now = self.clock()

        async def write(tx: TownshipTransaction) -> TalkView:
            talk = await self._talk(tx, talk_id)
            if talk.township != township:  # not this township's talk: as if there were none
                raise TownshipNotFound(f"township {township} has no talk {talk_id}")
            done = record_rectification(
                talk, report, township=township, by=by.name, today=self.today(now)
            )
            return await self._save_talk(tx, done, now)

        return await self._once(f"rectification:{talk_id}", report, key, TalkView, write)

    async def talks(self, *, township: str | None, year: str) -> list[TalkView]:
        """The talks requested in the year or whose deadline falls in it, as they stand."""
        if township is not None:
            check_current(township, self.townships, self.aliases)
        now = self.clock()
        number = self._year(year, now)
        async with self.store.transaction(readonly=True) as tx:
            talks = await self._year_talks(tx, township, number)
        today = self.today(now)
        return [talk_view(talk, today) for talk in talks]

    # --- praise, criticism, veto ----------------------------------------------------

    async def record_notice(
        self, township: str, details: NoticeDetails, by: Principal, key: str | None = None
    ) -> NoticeView:
        async def write(tx: TownshipTransaction, now: datetime) -> NoticeView:
            notice = Notice(
                notice_id=await tx.next_notice_id(details.year),
                township=township,
                year=details.year,
                kind=details.kind,
                text=details.text,
                recorded_by=by.name,
                recorded_at=now,
            )
            await tx.add_notice(notice)
            return NoticeView(**notice.__dict__)

        return await self._record("notice", township, details, key, view=NoticeView, write=write)

    async def record_veto(
        self, township: str, details: VetoDetails, by: Principal, key: str | None = None
    ) -> VetoView:
        async def write(tx: TownshipTransaction, now: datetime) -> VetoView:
            if await tx.veto(township, details.year) is not None:
                raise TownshipStateError(
                    f"{township}'s {details.year} assessment already has a one-vote veto"
                )
            veto = Veto(township, details.year, details.reason, by.name, now)
            await tx.add_veto(veto)
            return VetoView(**veto.__dict__)

        return await self._record("veto", township, details, key, view=VetoView, write=write)

    # --- quarterly report -----------------------------------------------------------

    async def enter_report(
        self,
        township: str,
        quarter: str,
        figures: QuarterFigures,
        by: Principal,
        key: str | None = None,
    ) -> QuarterView:
        def step(existing: QuarterReport | None, label: str, now: datetime) -> QuarterReport:
            return enter_report(
                existing, township=township, quarter=label, figures=figures, by=by.name, at=now
            )

        return await self._move(
            "enter_report", township, quarter, key, step, owner=by, given=figures
        )

    async def submit_report(
        self, township: str, quarter: str, by: Principal, key: str | None = None
    ) -> QuarterView:
        """The township hands its report in; from then on it no longer changes."""
        step = _handing(submit_report, by)
        return await self._move("submit_report", township, quarter, key, step, owner=by)

    async def receive_report(
        self, township: str, quarter: str, by: Principal, key: str | None = None
    ) -> QuarterView:
        """The city government receives a submitted report (any township's)."""
        step = _handing(receive_report, by)
        return await self._move("receive_report", township, quarter, key, step, owner=None)

    async def quarter_report(self, township: str, quarter: str, by: Principal) -> QuarterView:
        label, span = self._quarter(township, quarter)
        self._own(by, township)
        async with self.store.transaction(readonly=True) as tx:
            report = await tx.report(township, label)
            return await self._view(tx, township, label, span, report)

    async def assessment(self, year: str) -> Assessment:
        """The organisation department's view of every township for a year."""
        now = self.clock()
        number = self._year(year, now)
        today = self.today(now)
        quarters = year_quarters(number, today)
        async with self.store.transaction(readonly=True) as tx:
            talks = await self._year_talks(tx, None, number)
            notices = await tx.notices(number)
            vetoes = await tx.vetoes(number)
            reports = {(r.township, r.quarter): r for r in await tx.reports(quarters)}
            bus: dict[tuple[str, str], BusFigures] = {}
            for township, label in reports:
                _, span = self._quarter(township, label)
                bus[(township, label)] = await tx.bus_figures(self._codes(township), span)
        records = YearRecords(talks, notices, vetoes, reports, bus)
        return assessment(
            year=number, today=today, generated_at=now, names=self.names, records=records
        )

    # --- helpers --------------------------------------------------------------------

    async def _once(
        self,
        operation: str,
        given: BaseModel | None,
        key: str | None,
        view: type[V],
        write: Callable[[TownshipTransaction], Awaitable[V]],
    ) -> V:
        """`write` in one transaction, once per idempotency key: a retry with the same
        `given` gets the first answer back and writes nothing."""

        async def answer(tx: TownshipTransaction) -> dict[str, Any]:
            return (await write(tx)).model_dump(mode="json")

        request: BaseModel | dict[str, Any] = {} if given is None else given
        return view.model_validate(
            await once(self.store.transaction, operation, request, key, answer)
        )

    async def _record(
        self,
        kind: str,
        township: str,
        details: NoticeDetails | VetoDetails,
        key: str | None,
        *,
        view: type[V],
        write: Callable[[TownshipTransaction, datetime], Awaitable[V]],
    ) -> V:
        """A record of a township for a year (a notice, a veto): the township must be a
        current one and the year must have begun; written once per key."""
        check_current(township, self.townships, self.aliases)
        now = self.clock()
        self._not_future_year(details.year, now)
        return await self._once(f"{kind}:{township}", details, key, view, lambda tx: write(tx, now))

    async def _move(
        self,
        name: str,
        township: str,
        quarter: str,
        key: str | None,
        step: Step,
        *,
        owner: Principal | None,
        given: BaseModel | None = None,
    ) -> QuarterView:
        """Change a quarter's report by `step`: the township and quarter checked, then (with
        an `owner`) that it is the caller's own township, once per key."""
        label, span = self._quarter(township, quarter)
        if owner is not None:
            self._own(owner, township)
        now = self.clock()

        async def write(tx: TownshipTransaction) -> QuarterView:
            moved = step(await tx.report(township, label, for_update=True), label, now)
            await tx.save_report(moved)
            return await self._view(tx, township, label, span, moved)

        return await self._once(f"{name}:{township}:{label}", given, key, QuarterView, write)

    async def _save_talk(self, tx: TownshipTransaction, talk: Talk, now: datetime) -> TalkView:
        await tx.save_talk(talk)
        return talk_view(talk, self.today(now))

    async def _year_talks(
        self, tx: TownshipTransaction, township: str | None, year: int
    ) -> list[Talk]:
        """Those requested in the year, or whose deadline falls in it (one township or all)."""
        first, last = date(year, 1, 1), date(year, 12, 31)
        span = DaySpan(first, last, self._start(year), self._start(year + 1))
        return await tx.talks(township, span)

    async def _view(
        self,
        tx: TownshipTransaction,
        township: str,
        label: str,
        span: QuarterSpan,
        report: QuarterReport | None,
    ) -> QuarterView:
        bus = await tx.bus_figures(self._codes(township), span)
        shown = BusFiguresView(**bus.__dict__, open_cases_as_of=span.as_of)
        name = self.names[township]
        if report is None:
            return QuarterView(
                township=township,
                township_name=name,
                quarter=label,
                status="missing",
                figures=None,
                bus=shown,
                findings=[],
            )
        return QuarterView(
            **report.__dict__,
            township_name=name,
            bus=shown,
            findings=check_report(report.figures, bus),
        )

    async def _talk(self, tx: TownshipTransaction, talk_id: str) -> Talk:
        talk = await tx.talk(talk_id, for_update=True)
        if talk is None:
            raise TownshipNotFound(f"no talk {talk_id!r}")
        return talk

    def _codes(self, township: str) -> list[str]:
        """The township's code and those of abolished units whose cases count under it."""
        return [township, *(a.code for a in self.aliases.values() if a.successor == township)]

    def _own(self, principal: Principal, township: str) -> None:
        """A township's officials act for their own township only (the policy says so too)."""
        if principal.role is Role.township and principal.township != township:
            raise NotYours(f"township {principal.township} may not act for {township}")

    def _quarter(self, township: str, quarter: str) -> tuple[str, QuarterSpan]:
        check_current(township, self.townships, self.aliases)
        now = self.clock()
        first, last = quarter_days(quarter, self.today(now))
        start = datetime.combine(first, time(), self.timezone)
        end = datetime.combine(last + timedelta(days=1), time(), self.timezone)
        label = f"{first.year}Q{(first.month + 2) // 3}"
        return label, QuarterSpan(first, last, start, end, min(end, now))

    def _year(self, text: str, now: datetime) -> int:
        if not text.strip().isdigit() or len(text.strip()) != 4:
            raise InvalidInput("year", f"expected a year such as 2026, got {text!r}")
        number = int(text)
        if number < EARLIEST_YEAR:
            raise InvalidInput("year", f"year {number} is before {EARLIEST_YEAR}")
        self._not_future_year(number, now)
        return number

    def _not_future_year(self, year: int, now: datetime) -> None:
        if year > self.today(now).year:
            raise InvalidInput("year", f"{year} has not begun (today is {self.today(now)})")

    def _start(self, year: int) -> datetime:
        return datetime.combine(date(year, 1, 1), time(), self.timezone)
