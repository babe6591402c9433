"""The department response record (共同责任): how each department answered what it was
asked in the period. Whether one answer was in time is `outcomes.classify`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from services.reports.common import (
    Heading,
    PeriodReport,
    ReportModel,
    file_safe,
    hours,
    listed_order,
    percentile,
)
from services.reports.outcomes import ResponseRow, classify, response_seconds


class DepartmentFigures(ReportModel):
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


class DepartmentReport(PeriodReport):
    kind: Literal["departments"] = "departments"
    department: str | None
    rows: list[DepartmentFigures]
    totals: DepartmentFigures

    @property
    def slug(self) -> str:
        return f"departments-{file_safe(self.period)}" + (
            f"-{self.department}" if self.department else ""
        )


def department_figures(
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
        median_response_hours=hours(percentile(seconds, 0.5)),
        p95_response_hours=hours(percentile(seconds, 0.95)),
    )


def department_report(
    heading: Heading,
    *,
    department: str | None,
    names: Mapping[str, str],
    rows: Sequence[ResponseRow],
) -> DepartmentReport:
    """Per department, the requirements made in the period and how they were answered."""
    window, as_of = heading.window, heading.as_of
    counted = [
        row
        for row in rows
        if window.holds(row.required_at) and (department is None or row.department == department)
    ]
    by_department: dict[str, list[ResponseRow]] = defaultdict(list)
    for row in counted:
        by_department[row.department].append(row)
    return DepartmentReport(
        **heading.fields(),
        department=department,
        rows=[
            department_figures(code, names.get(code, code), by_department[code], as_of)
            for code in listed_order(by_department, names)
        ],
        totals=department_figures("*", "合计", counted, as_of),
    )
