"""Pure report logic: periods, aggregation from plain rows, percentiles, masking.

No I/O here: the adapter reads plain rows in one snapshot and these functions turn them
into figures, so the same rows always give the same report and the unit tests need no
database. Every rule that decides whether a row counts lives here, not in SQL.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from events.identifiers import mask_identifier, mask_name
from events.land import LandClass, is_cultivated
from events.models import ClueSource, DecimalStr
from events.privacy import mask_identifiers
from services.errors import InvalidInput
from services.registry.domain import BASIC_FARMLAND_THRESHOLD_MU, CULTIVATED_THRESHOLD_MU

DEFAULT_OPEN_BOUND_DAYS = 90
MAX_OPEN_BOUND_DAYS = 3650
EARLIEST_YEAR = 2000
# Steps after which a case is no longer open: restored, revoked, legalised (land procedures
# obtained), confiscated (没收到位 ends the case), or closed after any of them.
ENDING_STEPS = frozenset(
    {"restoration", "revocation", "land_procedures", "confiscation", "closure"}
)


# --- periods ------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A period as instants in the deployment time zone: [start, end), plus its days."""

    start: datetime
    end: datetime
    first_day: date
    last_day: date

    def holds(self, moment: datetime | None) -> bool:
        return moment is not None and self.start <= moment < self.end

    def holds_day(self, day: date | None) -> bool:
        return day is not None and self.first_day <= day <= self.last_day


@dataclass(frozen=True)
class Period:
    """Calendar days, both ends included, with the label a reader recognises."""

    label: str
    first_day: date
    last_day: date

    def window(self, zone: tzinfo) -> Window:
        """Local midnights: a case filed at 00:30 on 1 July in the deployment zone is Q3."""
        return Window(
            start=datetime.combine(self.first_day, time(), zone),
            end=datetime.combine(self.last_day + timedelta(days=1), time(), zone),
            first_day=self.first_day,
            last_day=self.last_day,
        )


_QUARTER = re.compile(r"^(\d{4})[Qq](\d+)$")
_YEAR = re.compile(r"^\d{4}$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def _year_number(text: str, field: str) -> int:
    year = int(text)
    if year < EARLIEST_YEAR:
        raise InvalidInput(field, f"year {year} is before {EARLIEST_YEAR}")
    return year


def _not_future(period: Period, field: str, today: date) -> Period:
    if period.first_day > today:
        raise InvalidInput(
            field, f"{period.label} has not begun yet (today is {today.isoformat()})"
        )
    return period


def parse_quarter(text: str, today: date, field: str = "quarter") -> Period:
    """`2026Q3`: July to September 2026."""
    value = text.strip()
    match = _QUARTER.match(value)
    if match is None:
        raise InvalidInput(field, f"expected a quarter such as 2026Q3, got {text!r}")
    year, quarter = _year_number(match[1], field), int(match[2])
    if not 1 <= quarter <= 4:
        raise InvalidInput(field, f"the quarter must be 1 to 4, got {quarter} in {text!r}")
    first = date(year, 3 * quarter - 2, 1)
    last = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return _not_future(Period(f"{year}Q{quarter}", first, last - timedelta(days=1)), field, today)


def parse_year(text: str, today: date, field: str = "year") -> Period:
    """`2026`: the calendar year."""
    value = text.strip()
    if not _YEAR.match(value):
        raise InvalidInput(field, f"expected a year such as 2026, got {text!r}")
    year = _year_number(value, field)
    return _not_future(Period(value, date(year, 1, 1), date(year, 12, 31)), field, today)


def parse_day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(field, f"expected a date such as 2026-07-01, got {text!r}") from None


def parse_period(text: str, today: date, field: str = "period") -> Period:
    """A year (`2026`), a quarter (`2026Q3`) or explicit days (`2026-07-01..2026-09-30`)."""
    value = text.strip()
    if _YEAR.match(value):
        return parse_year(value, today, field)
    if _QUARTER.match(value):
        return parse_quarter(value, today, field)
    match = _RANGE.match(value)
    if match is None:
        raise InvalidInput(
            field,
            f"expected 2026, 2026Q3 or 2026-07-01..2026-09-30 (both days included), got {text!r}",
        )
    first, last = parse_day(match[1], field), parse_day(match[2], field)
    if first > last:
        raise InvalidInput(field, f"the first day {first} is after the last day {last}")
    if first.year < EARLIEST_YEAR:
        raise InvalidInput(field, f"year {first.year} is before {EARLIEST_YEAR}")
    return _not_future(Period(f"{first}..{last}", first, last), field, today)


def check_known(field: str, code: str | None, known: Iterable[str], what: str) -> None:
    if code is None:
        return
    codes = list(known)
    if code not in codes:
        raise InvalidInput(field, f"unknown {what} {code!r}; known: {', '.join(codes)}")


# --- statistics ---------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within 0..1, got {fraction}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value / 3600, 2)


# --- plain rows (what the store reads) ----------------------------------------------


@dataclass(frozen=True)
class ClueRow:
    township: str
    source: str
    reported_on: date


@dataclass(frozen=True)
class FiledCaseRow:
    """A case filed in the period with its surveyed parcels (land class, area in mu)."""

    case_id: str
    township: str
    filed_at: datetime
    parcels: tuple[tuple[str, Decimal], ...]


@dataclass(frozen=True)
class AccountabilityRow:
    case_id: str
    township: str
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
class RestorationRow:
    case_id: str
    township: str
    verified_on: date


@dataclass(frozen=True)
class OpenCaseRow:
    """A case filed before `as_of`; `ended_at` is its first restoration/revocation/closure."""

    case_id: str
    township: str
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


@dataclass(frozen=True)
class ResponseRow:
    """The tracker's record of one requirement (apply or lift) and its answer."""

    department: str
    measure: str
    case_id: str
    action: str
    required_at: datetime
    due_at: datetime
    done_at: datetime | None
    failed_at: datetime | None


@dataclass(frozen=True)
class SatelliteCaseRow:
    case_id: str
    township: str
    found_on: date
    basic_farmland_mu: Decimal
    cultivated_mu: Decimal
    revoked: bool


@dataclass(frozen=True)
class RecordRow:
    seq: int
    step: str
    data: Mapping[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class NoticeSourceRow:
    """A case as the registry holds it, unmasked: only `public_notice` may read it."""

    case_id: str
    township: str
    status: str
    subject_kind: str
    subject_id: str
    subject_name: str
    parcels: tuple[tuple[str, Decimal], ...]
    basic_farmland_mu: Decimal
    cultivated_mu: Decimal
    violation_kind: str
    source: str
    found_on: date
    accountability_started: bool
    records: tuple[RecordRow, ...] = field(default=())


# --- report models ------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


LAND_CLASSES = tuple(land_class.value for land_class in LandClass)
CLUE_SOURCES = tuple(source.value for source in ClueSource)


class TownshipFigures(_Model):
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


class TownshipReport(_Model):
    kind: Literal["township"] = "township"
    period: str
    first_day: date
    last_day: date
    timezone: str
    township: str | None
    older_than_days: int
    as_of: datetime
    generated_at: datetime
    departments_read: list[str]
    rows: list[TownshipFigures]
    totals: TownshipFigures

    @property
    def slug(self) -> str:
        return f"township-{self.period}" + (f"-{self.township}" if self.township else "")


class DepartmentFigures(_Model):
    department: str
    department_name: str
    required: int
    lifts_required: int
    on_time: int
    late: int
    failed: int
    unanswered: int
    pending: int
    on_time_rate: float | None  # percent of the requirements whose deadline has passed
    median_response_hours: float | None
    p95_response_hours: float | None


class DepartmentReport(_Model):
    kind: Literal["departments"] = "departments"
    period: str
    first_day: date
    last_day: date
    timezone: str
    department: str | None
    as_of: datetime
    generated_at: datetime
    rows: list[DepartmentFigures]
    totals: DepartmentFigures

    @property
    def slug(self) -> str:
        return f"departments-{_file_safe(self.period)}" + (
            f"-{self.department}" if self.department else ""
        )


class RankedTownship(_Model):
    rank: int
    township: str
    township_name: str
    cases: int
    basic_farmland_mu: DecimalStr
    cultivated_mu: DecimalStr  # permanent basic farmland included
    large_cases: int
    flagged: bool
    flag_reason: str


class LargeCase(_Model):
    case_id: str
    township: str
    township_name: str
    found_on: date
    basic_farmland_mu: DecimalStr
    cultivated_mu: DecimalStr
    reason: str


class RankingReport(_Model):
    kind: Literal["ranking"] = "ranking"
    year: int
    generated_at: datetime
    revoked_excluded: int
    rows: list[RankedTownship]
    large_cases: list[LargeCase]

    @property
    def slug(self) -> str:
        return f"ranking-{self.year}"


class NoticeParcel(_Model):
    land_class: str
    area_mu: DecimalStr


class NoticeCase(_Model):
    """A typical case as published: the subject's name (a person's) and ID masked."""

    case_id: str
    township: str
    township_name: str
    subject_kind: str
    subject_name: str
    subject_id: str
    violation_kind: str
    source: str
    found_on: date
    parcels: list[NoticeParcel]
    basic_farmland_mu: DecimalStr
    cultivated_mu: DecimalStr
    accountability_started: bool
    status: str
    decision_no: str
    decided_on: date
    fine_yuan: DecimalStr
    penalty_summary: str
    rectifications: list[str]
    restoration_verified_on: date | None
    closed_on: date | None


class NoticeReport(_Model):
    kind: Literal["notice"] = "notice"
    selection: str
    generated_at: datetime
    cases: list[NoticeCase]

    @property
    def slug(self) -> str:
        return f"notice-{_file_safe(self.selection)}"


Report = TownshipReport | DepartmentReport | RankingReport | NoticeReport


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:80] or "report"


# --- 1. quarterly township report ---------------------------------------------------


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
        area = {land_class: self.area.get(land_class, Decimal(0)) for land_class in LAND_CLASSES}
        for land_class, value in self.area.items():  # a class added later still shows
            area.setdefault(land_class, value)
        cultivated = sum(
            (value for cls, value in area.items() if cls in LAND_CLASSES and _cultivated(cls)),
            Decimal(0),
        )
        clues = {source: self.clues.get(source, 0) for source in CLUE_SOURCES}
        for source, count in self.clues.items():
            clues.setdefault(source, count)
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
    *,
    period: Period,
    window: Window,
    timezone: str,
    township: str | None,
    older_than_days: int,
    as_of: datetime,
    generated_at: datetime,
    names: Mapping[str, str],
    departments_read: Sequence[str],
    rows: TownshipRows,
) -> TownshipReport:
    """Per township, what happened in the quarter; a township with nothing is left out."""
    tallies = _tally_flows(rows, window)
    bound = timedelta(days=older_than_days)
    for open_case in rows.open_cases:
        if is_open_over_bound(open_case, as_of, bound):
            tallies[open_case.township].open_ids.append(open_case.case_id)
    if township is not None:
        tallies = defaultdict(_TownshipTally, {township: tallies[township]})
    figures = [
        tallies[code].figures(code, names.get(code, code))
        for code in _township_order(tallies, names)
    ]
    figures = [figure for figure in figures if not figure.empty]
    return TownshipReport(
        period=period.label,
        first_day=period.first_day,
        last_day=period.last_day,
        timezone=timezone,
        township=township,
        older_than_days=older_than_days,
        as_of=as_of,
        generated_at=generated_at,
        departments_read=list(departments_read),
        rows=figures,
        totals=_township_totals(figures),
    )


def _township_order(found: Iterable[str], names: Mapping[str, str]) -> list[str]:
    """The townships file's order, then any code it does not know, alphabetically."""
    codes = set(found)
    return [code for code in names if code in codes] + sorted(codes - set(names))


def _township_totals(rows: Sequence[TownshipFigures]) -> TownshipFigures:
    clues: Counter[str] = Counter()
    areas: dict[str, Decimal] = {land_class: Decimal(0) for land_class in LAND_CLASSES}
    counts: Counter[str] = Counter()
    for row in rows:
        clues.update(row.clues_by_source)
        for land_class, area in row.area_mu_by_land_class.items():
            areas[land_class] = areas.get(land_class, Decimal(0)) + area
        counts.update(
            {
                "filed": row.cases_filed,
                "accountability": row.accountability_referrals,
                "applied": row.measures_applied,
                "lifted": row.measures_lifted,
                "restorations": row.restorations_verified,
            }
        )
    return TownshipFigures(
        township="*",
        township_name="合计",
        clues_by_source={source: clues.get(source, 0) for source in CLUE_SOURCES} | dict(clues),
        clues_total=sum(clues.values()),
        cases_filed=counts["filed"],
        area_mu_by_land_class=areas,
        cultivated_land_mu=sum((row.cultivated_land_mu for row in rows), Decimal(0)),
        accountability_referrals=counts["accountability"],
        measures_applied=counts["applied"],
        measures_lifted=counts["lifted"],
        restorations_verified=counts["restorations"],
        open_cases_over_bound=sum(row.open_cases_over_bound for row in rows),
        open_case_ids=sorted(case_id for row in rows for case_id in row.open_case_ids),
    )


# --- 2. department response record ---------------------------------------------------

Outcome = Literal["on_time", "late", "failed", "unanswered", "pending"]


def classify(row: ResponseRow, as_of: datetime) -> Outcome:
    """Done by the deadline, done after it, failure reported, never answered, or not yet due."""
    if row.done_at is not None:
        return "on_time" if row.done_at <= row.due_at else "late"
    if row.failed_at is not None:
        return "failed"
    return "unanswered" if row.due_at < as_of else "pending"


def response_seconds(row: ResponseRow) -> float | None:
    """From requirement to answer; an answer stamped before it (clock skew) counts as 0."""
    if row.done_at is None:
        return None
    return max(0.0, (row.done_at - row.required_at).total_seconds())


def _department_figures(
    code: str, name: str, rows: Sequence[ResponseRow], as_of: datetime
) -> DepartmentFigures:
    outcomes = Counter(classify(row, as_of) for row in rows)
    seconds = [s for s in (response_seconds(row) for row in rows) if s is not None]
    decided = len(rows) - outcomes["pending"]
    return DepartmentFigures(
        department=code,
        department_name=name,
        required=len(rows),
        lifts_required=sum(row.action == "lift" for row in rows),
        on_time=outcomes["on_time"],
        late=outcomes["late"],
        failed=outcomes["failed"],
        unanswered=outcomes["unanswered"],
        pending=outcomes["pending"],
        on_time_rate=round(100 * outcomes["on_time"] / decided, 1) if decided else None,
        median_response_hours=_hours(percentile(seconds, 0.5)),
        p95_response_hours=_hours(percentile(seconds, 0.95)),
    )


def department_report(
    *,
    period: Period,
    window: Window,
    timezone: str,
    department: str | None,
    as_of: datetime,
    generated_at: datetime,
    names: Mapping[str, str],
    rows: Sequence[ResponseRow],
) -> DepartmentReport:
    """Per department, the requirements made in the period and how they were answered."""
    counted = [
        row
        for row in rows
        if window.holds(row.required_at) and (department is None or row.department == department)
    ]
    by_department: dict[str, list[ResponseRow]] = defaultdict(list)
    for row in counted:
        by_department[row.department].append(row)
    order = [code for code in names if code in by_department] + sorted(
        set(by_department) - set(names)
    )
    return DepartmentReport(
        period=period.label,
        first_day=period.first_day,
        last_day=period.last_day,
        timezone=timezone,
        department=department,
        as_of=as_of,
        generated_at=generated_at,
        rows=[
            _department_figures(code, names.get(code, code), by_department[code], as_of)
            for code in order
        ],
        totals=_department_figures("*", "合计", counted, as_of),
    )


# --- 3. annual satellite-enforcement ranking ----------------------------------------


def threshold_reasons(basic_farmland_mu: Decimal, cultivated_mu: Decimal) -> list[str]:
    """Seed §四(五): ≥ 5 mu permanent basic farmland or ≥ 10 mu cultivated land."""
    reasons = []
    if basic_farmland_mu >= BASIC_FARMLAND_THRESHOLD_MU:
        reasons.append(f"永久基本农田 {basic_farmland_mu} 亩 ≥ {BASIC_FARMLAND_THRESHOLD_MU} 亩")
    if cultivated_mu >= CULTIVATED_THRESHOLD_MU:
        reasons.append(f"耕地 {cultivated_mu} 亩 ≥ {CULTIVATED_THRESHOLD_MU} 亩")
    return reasons


def satellite_ranking(
    *,
    period: Period,
    generated_at: datetime,
    names: Mapping[str, str],
    rows: Sequence[SatelliteCaseRow],
) -> RankingReport:
    """Townships by cultivated land found occupied by satellite imagery; courts' revocations
    are left out, since a revoked finding is not an occupation."""
    counted = [
        row
        for row in rows
        if not row.revoked and period.first_day <= row.found_on <= period.last_day
    ]
    per: dict[str, list[SatelliteCaseRow]] = defaultdict(list)
    for row in counted:
        per[row.township].append(row)
    totals = {
        code: (
            sum((row.cultivated_mu for row in cases), Decimal(0)),
            sum((row.basic_farmland_mu for row in cases), Decimal(0)),
        )
        for code, cases in per.items()
    }
    order = sorted(totals, key=lambda code: (-totals[code][0], -totals[code][1], code))
    ranked: list[RankedTownship] = []
    for position, code in enumerate(order, start=1):
        cultivated, basic = totals[code]
        same = ranked and (ranked[-1].cultivated_mu, ranked[-1].basic_farmland_mu) == (
            cultivated,
            basic,
        )
        reasons = threshold_reasons(basic, cultivated)
        ranked.append(
            RankedTownship(
                rank=ranked[-1].rank if same else position,
                township=code,
                township_name=names.get(code, code),
                cases=len(per[code]),
                basic_farmland_mu=basic,
                cultivated_mu=cultivated,
                large_cases=sum(
                    bool(threshold_reasons(r.basic_farmland_mu, r.cultivated_mu)) for r in per[code]
                ),
                flagged=bool(reasons),
                flag_reason="；".join(reasons),
            )
        )
    large = [
        LargeCase(
            case_id=row.case_id,
            township=row.township,
            township_name=names.get(row.township, row.township),
            found_on=row.found_on,
            basic_farmland_mu=row.basic_farmland_mu,
            cultivated_mu=row.cultivated_mu,
            reason="；".join(threshold_reasons(row.basic_farmland_mu, row.cultivated_mu)),
        )
        for row in sorted(counted, key=lambda r: (-r.cultivated_mu, r.case_id))
        if threshold_reasons(row.basic_farmland_mu, row.cultivated_mu)
    ]
    return RankingReport(
        year=period.first_day.year,
        generated_at=generated_at,
        revoked_excluded=sum(
            row.revoked and period.first_day <= row.found_on <= period.last_day for row in rows
        ),
        rows=ranked,
        large_cases=large,
    )


# --- 4. public notice of typical cases ----------------------------------------------

# Every text a notice publishes is either a fixed code (township, source, status, land
# class, rectification action, all checked against their lists when recorded) or goes
# through `scrub`: an officer's free text may name anyone's ID or telephone number.


def public_name(kind: str, name: str) -> str:
    """A person's name is masked (张**); an organisation's is published, as notices do,
    with any ID or telephone number typed into it masked."""
    return mask_identifiers(name.strip()) if kind == "organization" else mask_name(name)


def scrub(text: str, subject_kind: str, subject_id: str, subject_name: str) -> str:
    """Free text made publishable: the subject's ID and a person's name masked, and any
    other ID number (18 or 15 characters) or telephone number too."""
    cleaned = text.replace(subject_id, mask_identifier(subject_id))
    if subject_kind != "organization" and subject_name.strip():
        cleaned = cleaned.replace(subject_name.strip(), mask_name(subject_name))
    return mask_identifiers(cleaned)


def notice_refusal(records: Sequence[RecordRow]) -> str | None:
    """Why a case may not be published, or None: it needs a penalty and no revocation."""
    steps = {record.step for record in records}
    if "revocation" in steps:
        return "revoked by a court; a revoked case is never published"
    if "penalty" not in steps:
        return "no penalty decided yet; only decided or closed cases are published"
    return None


def _last(records: Sequence[RecordRow], step: str) -> RecordRow | None:
    found = [record for record in records if record.step == step]
    return found[-1] if found else None


def _data_day(record: RecordRow | None, key: str) -> date | None:
    if record is None or record.data.get(key) is None:
        return None
    return date.fromisoformat(str(record.data[key]))


def notice_case(row: NoticeSourceRow, names: Mapping[str, str]) -> NoticeCase:
    penalty = _last(row.records, "penalty")
    if penalty is None or notice_refusal(row.records) is not None:
        raise ValueError(f"{row.case_id} is not publishable")
    decided_on = _data_day(penalty, "decided_on")
    if decided_on is None:
        raise ValueError(f"{row.case_id}: the penalty record has no decided_on")
    return NoticeCase(
        case_id=row.case_id,
        township=row.township,
        township_name=names.get(row.township, row.township),
        subject_kind=row.subject_kind,
        subject_name=public_name(row.subject_kind, row.subject_name),
        subject_id=mask_identifier(row.subject_id),
        violation_kind=scrub(
            row.violation_kind, row.subject_kind, row.subject_id, row.subject_name
        ),
        source=row.source,
        found_on=row.found_on,
        parcels=[NoticeParcel(land_class=cls, area_mu=area) for cls, area in row.parcels],
        basic_farmland_mu=row.basic_farmland_mu,
        cultivated_mu=row.cultivated_mu,
        accountability_started=row.accountability_started,
        status=row.status,
        decision_no=scrub(
            str(penalty.data.get("decision_no", "")),
            row.subject_kind,
            row.subject_id,
            row.subject_name,
        ),
        decided_on=decided_on,
        fine_yuan=Decimal(str(penalty.data.get("fine_yuan", "0"))),
        penalty_summary=scrub(
            str(penalty.data.get("summary", "")), row.subject_kind, row.subject_id, row.subject_name
        ),
        rectifications=[
            str(record.data.get("action", "other"))
            for record in row.records
            if record.step == "rectification"
        ],
        restoration_verified_on=_data_day(_last(row.records, "restoration"), "verified_on"),
        closed_on=_data_day(_last(row.records, "closure"), "closed_on"),
    )


def decided_or_closed_since(row: NoticeSourceRow, since: date) -> bool:
    decided = _data_day(_last(row.records, "penalty"), "decided_on")
    closed = _data_day(_last(row.records, "closure"), "closed_on")
    return any(day is not None and day >= since for day in (decided, closed))


def public_notice(
    *,
    selection: str,
    generated_at: datetime,
    names: Mapping[str, str],
    rows: Sequence[NoticeSourceRow],
    since: date | None,
) -> NoticeReport:
    """The publishable cases among `rows`, in case order; with `since`, those decided or
    closed on or after that day (a revoked or undecided case is silently left out)."""
    chosen = [
        row
        for row in sorted(rows, key=lambda r: r.case_id)
        if notice_refusal(row.records) is None
        and (since is None or decided_or_closed_since(row, since))
    ]
    return NoticeReport(
        selection=selection,
        generated_at=generated_at,
        cases=[notice_case(row, names) for row in chosen],
    )
