"""Report periods: a quarter, a year or explicit days, checked and placed in the local zone.

Every report reads its period through here, so `2026Q3` means the same days, and the same
local midnights, in the township report, the department record and the ranking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from services.errors import InvalidInput

EARLIEST_YEAR = 2000


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
