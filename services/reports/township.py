"""The quarterly township report (每季度书面汇报): per township, what happened in the
quarter (clues, cases, areas, accountability, measures, restorations), its old open
cases, and the targets and warning talks of `township_targets`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal, TypeVar

from pydantic import Field

from events.land import LandClass, is_cultivated
from events.models import ClueSource, DecimalStr
from services.reports.common import Heading, PeriodReport, ReportModel, listed_order
from services.reports.periods import Window
from services.reports.township_targets import (
    TalkRow,
    TargetRow,
    TownshipTalk,
    TownshipTargets,
    talk_in_window,
    township_talk,
    township_targets,
)

DEFAULT_OPEN_BOUND_DAYS = 90
MAX_OPEN_BOUND_DAYS = 3650
# Steps after which a case is no longer open: restored, revoked, legalised (land procedures
# obtained), confiscated (没收到位 ends the case), or closed after any of them.
ENDING_STEPS = frozenset(
    {"restoration", "revocation", "land_procedures", "confiscation", "closure"}
)
LAND_CLASSES = tuple(land_class.value for land_class in LandClass)
CLUE_SOURCES = tuple(source.value for source in ClueSource)
T = TypeVar("T")


# --- plain rows (what the store reads) ----------------------------------------------


@dataclass(frozen=True)
class ClueRow:
    township: str
    source: str
    reported_on: date


@dataclass(frozen=True)
class CaseInTownship:
    """A case as a township report counts it: under the township it was filed in."""

    case_id: str
    township: str


@dataclass(frozen=True)
class FiledCaseRow(CaseInTownship):
    """A case filed in the period with its surveyed parcels (land class, area in mu)."""

    filed_at: datetime
    parcels: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True)
class AccountabilityRow(CaseInTownship):
    started_at: datetime


@dataclass(frozen=True)
class BlockRow:
    """One department block (measure on a case) applied or lifted in the period."""

    department: str
    measure: str
    case_id: str
    township: str
    applied_at: datetime
    lifted_at: datetime | None


@dataclass(frozen=True)
class RestorationRow(CaseInTownship):
    verified_on: date


@dataclass(frozen=True)
class OpenCaseRow(CaseInTownship):
    """A case filed before `as_of`; `ended_at` is its first restoration/revocation/closure."""

    filed_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class TownshipRows:
    clues: Sequence[ClueRow] = ()
    filed: Sequence[FiledCaseRow] = ()
    accountability: Sequence[AccountabilityRow] = ()
    blocks: Sequence[BlockRow] = ()
    restorations: Sequence[RestorationRow] = ()
    open_cases: Sequence[OpenCaseRow] = ()
    targets: Sequence[TargetRow] = ()
    talks: Sequence[TalkRow] = ()


# --- the report ---------------------------------------------------------------------


class TownshipFigures(ReportModel):
    township: str
    township_name: str
    clues_by_source: dict[str, int]
    clues_total: int
    cases_filed: int
    area_mu_by_land_class: dict[str, DecimalStr]
    cultivated_land_mu: DecimalStr  # permanent basic farmland included (seed §四(五))
    accountability_referrals: int
    measures_applied: int
    measures_lifted: int
    restorations_verified: int
    open_cases_over_bound: int
    open_case_ids: list[str]

    @property
    def empty(self) -> bool:
        return not (
            self.clues_total
            or self.cases_filed
            or self.accountability_referrals
            or self.measures_applied
            or self.measures_lifted
            or self.restorations_verified
            or self.open_cases_over_bound
        )


class TownshipReport(PeriodReport):
    kind: Literal["township"] = "township"
    township: str | None
    older_than_days: int
    departments_read: list[str]
    rows: list[TownshipFigures]
    totals: TownshipFigures
    targets: list[TownshipTargets] = Field(default_factory=list)
    talks: list[TownshipTalk] = Field(default_factory=list)

    @property
    def slug(self) -> str:
        return f"township-{self.period}" + (f"-{self.township}" if self.township else "")


@dataclass
class _TownshipTally:
    clues: Counter[str] = field(default_factory=Counter)
    filed: int = 0
    area: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    accountability: int = 0
    applied: int = 0
    lifted: int = 0
    restorations: int = 0
    open_ids: list[str] = field(default_factory=list)

    def figures(self, code: str, name: str) -> TownshipFigures:
        area = _with_known_keys(self.area, LAND_CLASSES, Decimal(0))
        cultivated = sum(
            (value for cls, value in area.items() if cls in LAND_CLASSES and _cultivated(cls)),
            Decimal(0),
        )
        clues = _with_known_keys(self.clues, CLUE_SOURCES, 0)
        return TownshipFigures(
            township=code,
            township_name=name,
            clues_by_source=clues,
            clues_total=sum(clues.values()),
            cases_filed=self.filed,
            area_mu_by_land_class=area,
            cultivated_land_mu=cultivated,
            accountability_referrals=self.accountability,
            measures_applied=self.applied,
            measures_lifted=self.lifted,
            restorations_verified=self.restorations,
            open_cases_over_bound=len(self.open_ids),
            open_case_ids=sorted(self.open_ids),
        )


def _with_known_keys(found: Mapping[str, T], known: Sequence[str], zero: T) -> dict[str, T]:
    """Every known key in its order (zero when absent), then any key added later."""
    return {key: found.get(key, zero) for key in known} | dict(found)


def _cultivated(land_class: str) -> bool:
    return is_cultivated(LandClass(land_class))


def is_open_over_bound(row: OpenCaseRow, as_of: datetime, bound: timedelta) -> bool:
    """Open at `as_of` (filed before, not yet ended) and older than the bound."""
    filed_before = row.filed_at < as_of
    still_open = row.ended_at is None or row.ended_at >= as_of
    return filed_before and still_open and as_of - row.filed_at > bound


def _tally_flows(rows: TownshipRows, window: Window) -> dict[str, _TownshipTally]:
    """What happened within the window, township by township."""
    tallies: dict[str, _TownshipTally] = defaultdict(_TownshipTally)
    for clue in rows.clues:
        if window.holds_day(clue.reported_on):
            tallies[clue.township].clues[clue.source] += 1
    for case in rows.filed:
        if window.holds(case.filed_at):
            tally = tallies[case.township]
            tally.filed += 1
            for land_class, area in case.parcels:
                tally.area[land_class] += area
    for started in rows.accountability:
        if window.holds(started.started_at):
            tallies[started.township].accountability += 1
    for block in rows.blocks:
        tallies[block.township].applied += window.holds(block.applied_at)
        tallies[block.township].lifted += window.holds(block.lifted_at)
    for restoration in rows.restorations:
        if window.holds_day(restoration.verified_on):
            tallies[restoration.township].restorations += 1
    return tallies


def township_report(
    heading: Heading,
    *,
    township: str | None,
    older_than_days: int,
    names: Mapping[str, str],
    departments_read: Sequence[str],
    rows: TownshipRows,
) -> TownshipReport:
    """Per township, what happened in the quarter; a township with nothing is left out."""
    window, as_of = heading.window, heading.as_of
    tallies = _tally_flows(rows, window)
    bound = timedelta(days=older_than_days)
    for open_case in rows.open_cases:
        if is_open_over_bound(open_case, as_of, bound):
            tallies[open_case.township].open_ids.append(open_case.case_id)
    if township is not None:
        tallies = defaultdict(_TownshipTally, {township: tallies[township]})
    targets = [
        township_targets(row, names)
        for row in rows.targets
        if township is None or row.township == township
    ]
    talks = [
        township_talk(row, as_of.astimezone(window.start.tzinfo).date(), names)
        for row in sorted(rows.talks, key=lambda r: r.talk_id)
        if (township is None or row.township == township) and talk_in_window(row, window)
    ]
    reported = {entry.township for entry in targets} | {talk.township for talk in talks}
    figures = [
        tallies[code].figures(code, names.get(code, code))
        for code in listed_order([*tallies, *reported], names)
    ]
    figures = [figure for figure in figures if not figure.empty or figure.township in reported]
    return TownshipReport(
        **heading.fields(),
        township=township,
        older_than_days=older_than_days,
        departments_read=list(departments_read),
        rows=figures,
        totals=_township_totals(figures),
        targets=sorted(targets, key=lambda entry: entry.township),
        talks=talks,
    )


def _township_totals(rows: Sequence[TownshipFigures]) -> TownshipFigures:
    clues: Counter[str] = Counter()
    areas: dict[str, Decimal] = {land_class: Decimal(0) for land_class in LAND_CLASSES}
    for row in rows:
        clues.update(row.clues_by_source)
        for land_class, area in row.area_mu_by_land_class.items():
            areas[land_class] = areas.get(land_class, Decimal(0)) + area
    return TownshipFigures(
        township="*",
        township_name="合计",
        clues_by_source=_with_known_keys(clues, CLUE_SOURCES, 0),
        clues_total=sum(clues.values()),
        cases_filed=sum(row.cases_filed for row in rows),
        area_mu_by_land_class=areas,
        cultivated_land_mu=sum((row.cultivated_land_mu for row in rows), Decimal(0)),
        accountability_referrals=sum(row.accountability_referrals for row in rows),
        measures_applied=sum(row.measures_applied for row in rows),
        measures_lifted=sum(row.measures_lifted for row in rows),
        restorations_verified=sum(row.restorations_verified for row in rows),
        open_cases_over_bound=sum(row.open_cases_over_bound for row in rows),
        open_case_ids=sorted(case_id for row in rows for case_id in row.open_case_ids),
    )
