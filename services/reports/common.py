"""What every report shares: the frozen model base, percentiles, ordering, file names.

Pure: no I/O. The adapter reads plain rows in one snapshot and the report modules
(`township`, `department`, `ranking`, `notice`) turn them into figures, so the same rows
always give the same report and the unit tests need no database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from services.reports.periods import Period, Window


class ReportModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeriodReport(ReportModel):
    """A report over a period of days, with the instant its open figures are counted at."""

    period: str
    first_day: date
    last_day: date
    timezone: str
    as_of: datetime
    generated_at: datetime


@dataclass(frozen=True)
class Heading:
    """What heads a report over a period: its days, their local window and zone, the
    instant its open figures are counted at, and when it was made."""

    period: Period
    window: Window
    timezone: str
    as_of: datetime
    generated_at: datetime

    def fields(self) -> dict[str, object]:
        """The `PeriodReport` fields of a report under this heading."""
        return {
            "period": self.period.label,
            "first_day": self.period.first_day,
            "last_day": self.period.last_day,
            "timezone": self.timezone,
            "as_of": self.as_of,
            "generated_at": self.generated_at,
        }


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


def hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


def listed_order(found: Iterable[str], names: Mapping[str, str]) -> list[str]:
    """The configured order of `names` (townships, departments), then any code it does not
    know, alphabetically."""
    codes = set(found)
    return [code for code in names if code in codes] + sorted(codes - set(names))


def file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:80] or "report"
