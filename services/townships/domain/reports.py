"""The quarterly report of the responsibility targets (§四(一)): entered, submitted,
received, and checked against what the bus knows."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from events.models import DecimalStr
from services.errors import InvalidInput
from services.townships.domain.inputs import (
    EARLIEST_YEAR,
    TARGET_LABELS,
    TOLERANCE_MU,
    NotFound,
    QuarterFigures,
    StateError,
)

# --- quarterly report ---------------------------------------------------------------


class ReportStatus(StrEnum):
    draft = "draft"  # entered, still changeable by the township
    submitted = "submitted"  # sent to the city government: no longer changeable
    received = "received"  # the city government acknowledged it


_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def quarter_days(label: str, today: date, field: str = "quarter") -> tuple[date, date]:
    """`2026Q3` → its first and last day; a quarter that has not begun is refused."""
    match = _QUARTER.match(label.strip().upper())
    if match is None:
        raise InvalidInput(field, f"expected a quarter such as 2026Q3, got {label!r}")
    year, quarter = int(match[1]), int(match[2])
    if year < EARLIEST_YEAR:
        raise InvalidInput(field, f"year {year} is before {EARLIEST_YEAR}")
    first = date(year, 3 * quarter - 2, 1)
    after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    last = after - timedelta(days=1)
    if first > today:
        raise InvalidInput(field, f"{year}Q{quarter} has not begun yet (today is {today})")
    return first, last


@dataclass(frozen=True)
class QuarterReport:
    township: str
    quarter: str
    figures: QuarterFigures
    status: ReportStatus
    entered_by: str
    entered_at: datetime
    submitted_by: str | None = None
    submitted_at: datetime | None = None
    received_by: str | None = None
    received_at: datetime | None = None


def enter_report(
    existing: QuarterReport | None,
    *,
    township: str,
    quarter: str,
    figures: QuarterFigures,
    by: str,
    at: datetime,
) -> QuarterReport:
    """A draft is entered or replaced; a submitted report no longer changes."""
    if existing is not None and existing.status is not ReportStatus.draft:
        raise StateError(
            f"{township}'s report for {quarter} is {existing.status}; it can no longer change"
        )
    return QuarterReport(township, quarter, figures, ReportStatus.draft, by, at)


def submit_report(existing: QuarterReport | None, *, by: str, at: datetime) -> QuarterReport:
    if existing is None:
        raise NotFound("no report entered for this quarter: enter the figures first")
    if existing.status is not ReportStatus.draft:
        raise StateError(f"the report for {existing.quarter} is already {existing.status}")
    return replace(existing, status=ReportStatus.submitted, submitted_by=by, submitted_at=at)


def receive_report(existing: QuarterReport | None, *, by: str, at: datetime) -> QuarterReport:
    if existing is None:
        raise NotFound("no report entered for this quarter")
    if existing.status is not ReportStatus.submitted:
        raise StateError(
            f"the report for {existing.quarter} is {existing.status}; only a submitted report "
            "can be received"
        )
    return replace(existing, status=ReportStatus.received, received_by=by, received_at=at)


@dataclass(frozen=True)
class BusFigures:
    """What the bus holds for a township and quarter: cases filed in the quarter (a court's
    revocation left out), their occupied area, the area restored and verified in it, and
    the cases still open at its end."""

    cases_filed: int
    cultivated_occupied_mu: Decimal  # basic farmland included (seed §四(五))
    basic_farmland_occupied_mu: Decimal
    restored_mu: Decimal
    open_cases: int


Check = Literal["unmet_target", "discrepancy", "to_verify"]


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: str
    label: str
    check: Check
    entered: DecimalStr | None
    bus: DecimalStr | None
    message: str


FINDING_LABELS = {
    "cultivated_occupied_mu": "发现占用耕地面积",
    "basic_farmland_occupied_mu": "发现占用永久基本农田面积",
    "restored_mu": "复耕验收面积",
    "open_cases": "未结案件",
}


def check_report(figures: QuarterFigures, bus: BusFigures) -> list[Finding]:
    """Each unmet target, each entered finding that differs from the bus's, and each target
    reported met although the bus found that land occupied and not restored in the quarter."""
    return [*_unmet_targets(figures), *_discrepancies(figures, bus), *_to_verify(figures, bus)]


def _finding(
    labels: Mapping[str, str],
    item: str,
    check: Check,
    *,
    entered: Decimal | None,
    bus: Decimal | None,
    detail: str,
) -> Finding:
    """A finding on `item`, labelled from `labels`; its message leads with the label."""
    label = labels[item]
    return Finding(
        item=item, label=label, check=check, entered=entered, bus=bus, message=f"{label}: {detail}"
    )


def _unmet_targets(figures: QuarterFigures) -> list[Finding]:
    return [
        _finding(
            TARGET_LABELS,
            name,
            "unmet_target",
            entered=target.achieved,
            bus=None,
            detail=f"完成 {target.achieved} 亩，低于目标 {target.target} 亩",
        )
        for name, target in figures.targets.items()
        if not target.met
    ]


def _discrepancies(figures: QuarterFigures, bus: BusFigures) -> list[Finding]:
    """Entered findings the bus's figures contradict, areas beyond TOLERANCE_MU."""
    stated = figures.findings
    pairs: list[tuple[str, Decimal, Decimal]] = [
        ("cultivated_occupied_mu", stated.cultivated_occupied_mu, bus.cultivated_occupied_mu),
        (
            "basic_farmland_occupied_mu",
            stated.basic_farmland_occupied_mu,
            bus.basic_farmland_occupied_mu,
        ),
        ("restored_mu", stated.restored_mu, bus.restored_mu),
    ]
    found = [
        _finding(
            FINDING_LABELS,
            name,
            "discrepancy",
            entered=entered,
            bus=held,
            detail=f"填报 {entered} 亩，平台记录 {held} 亩",
        )
        for name, entered, held in pairs
        if abs(entered - held) > TOLERANCE_MU
    ]
    if stated.open_cases != bus.open_cases:
        found.append(
            _finding(
                FINDING_LABELS,
                "open_cases",
                "discrepancy",
                entered=Decimal(stated.open_cases),
                bus=Decimal(bus.open_cases),
                detail=f"填报 {stated.open_cases} 件，平台记录 {bus.open_cases} 件",
            )
        )
    return found


def _to_verify(figures: QuarterFigures, bus: BusFigures) -> list[Finding]:
    """Targets reported met although the bus saw that land occupied and not restored."""
    net_basic = bus.basic_farmland_occupied_mu - bus.restored_mu
    net_cultivated = bus.cultivated_occupied_mu - bus.restored_mu
    found = []
    for name, net in (("basic_farmland", net_basic), ("cultivated_land", net_cultivated)):
        target = getattr(figures.targets, name)
        if target.met and net > TOLERANCE_MU:
            detail = f"填报已完成，但平台记录本季度被占用且未复耕 {net} 亩，请核实"
            found.append(
                _finding(
                    TARGET_LABELS,
                    name,
                    "to_verify",
                    entered=target.achieved,
                    bus=net,
                    detail=detail,
                )
            )
    return found
