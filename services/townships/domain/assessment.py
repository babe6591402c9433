"""The organisation department's assessment view: each township's talks, notices, vetoes
and quarterly checks over a year."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.townships.domain.reports import BusFigures, QuarterReport, ReportStatus, check_report
from services.townships.domain.talks import Rectification, Talk, TalkStatus, rectification

# --- the organisation department's assessment view ----------------------------------


class TalkView(BaseModel):
    model_config = ConfigDict(frozen=True)

    talk_id: str
    township: str
    reason: str
    cases: list[str]
    status: TalkStatus
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    talk_on: date | None
    rectify_by: date | None
    decision_reason: str | None
    rectified_on: date | None
    rectification_summary: str | None
    rectification: Rectification


def talk_view(talk: Talk, today: date) -> TalkView:
    return TalkView(
        talk_id=talk.talk_id,
        township=talk.township,
        reason=talk.reason,
        cases=list(talk.cases),
        status=talk.status,
        requested_by=talk.requested_by,
        requested_at=talk.requested_at,
        decided_by=talk.decided_by,
        decided_at=talk.decided_at,
        talk_on=talk.talk_on,
        rectify_by=talk.rectify_by,
        decision_reason=talk.decision_reason,
        rectified_on=talk.rectified_on,
        rectification_summary=talk.rectification_summary,
        rectification=rectification(talk, today),
    )


@dataclass(frozen=True)
class Notice:
    notice_id: str
    township: str
    year: int
    kind: Literal["praise", "criticism"]
    text: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class Veto:
    township: str
    year: int
    reason: str
    recorded_by: str
    recorded_at: datetime


class NoticeView(BaseModel):
    model_config = ConfigDict(frozen=True)

    notice_id: str
    township: str
    year: int
    kind: Literal["praise", "criticism"]
    text: str
    recorded_by: str
    recorded_at: datetime


class VetoView(BaseModel):
    model_config = ConfigDict(frozen=True)

    township: str
    year: int
    reason: str
    recorded_by: str
    recorded_at: datetime


class QuarterCheck(BaseModel):
    """One quarter's report: its state, and what the check against the bus found."""

    model_config = ConfigDict(frozen=True)

    quarter: str
    status: ReportStatus | Literal["missing"]
    unmet_targets: list[str]
    discrepancies: list[str]
    to_verify: list[str]


class RectificationCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    met: int = 0
    met_late: int = 0
    overdue: int = 0
    open: int = 0


class TownshipAssessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    township: str
    township_name: str
    talks: list[TalkView]
    rectifications: RectificationCounts
    praise: list[NoticeView]
    criticism: list[NoticeView]
    veto: VetoView | None
    reports_submitted: int
    reports_received: int
    quarters: list[QuarterCheck]


class Assessment(BaseModel):
    """耕地保护责任目标考核: per township, what the organisation department weighs in cadre
    evaluation (seed §二 组织部, §四(三))."""

    model_config = ConfigDict(frozen=True)

    year: int
    as_of: date
    generated_at: datetime
    townships: list[TownshipAssessment]


def quarter_check(
    quarter: str, report: QuarterReport | None, bus: BusFigures | None
) -> QuarterCheck:
    if report is None or bus is None:
        return QuarterCheck(
            quarter=quarter, status="missing", unmet_targets=[], discrepancies=[], to_verify=[]
        )
    findings = check_report(report.figures, bus)
    by_check: dict[str, list[str]] = {"unmet_target": [], "discrepancy": [], "to_verify": []}
    for finding in findings:
        by_check[finding.check].append(finding.message)
    return QuarterCheck(
        quarter=quarter,
        status=report.status,
        unmet_targets=by_check["unmet_target"],
        discrepancies=by_check["discrepancy"],
        to_verify=by_check["to_verify"],
    )


def year_quarters(year: int, today: date) -> list[str]:
    """The year's quarters that have begun by `today`."""
    return [f"{year}Q{q}" for q in range(1, 5) if date(year, 3 * q - 2, 1) <= today]


@dataclass(frozen=True)
class YearRecords:
    """What was recorded of the townships for a year: talks, notices, vetoes, and each
    quarterly report with the bus's figures for it, both by (township, quarter)."""

    talks: Sequence[Talk] = ()
    notices: Sequence[Notice] = ()
    vetoes: Sequence[Veto] = ()
    reports: Mapping[tuple[str, str], QuarterReport] = field(default_factory=dict)
    bus: Mapping[tuple[str, str], BusFigures] = field(default_factory=dict)


def assessment(
    *,
    year: int,
    today: date,
    generated_at: datetime,
    names: Mapping[str, str],
    records: YearRecords,
) -> Assessment:
    """Every township in `names`' order (the townships file's), whether or not anything was
    recorded for it: an empty row is itself a result."""
    talks, notices, vetoes = records.talks, records.notices, records.vetoes
    reports, bus = records.reports, records.bus
    as_of = min(today, date(year, 12, 31))
    quarters = year_quarters(year, today)
    rows = []
    for code, name in names.items():
        own = [talk_view(t, as_of) for t in talks if t.township == code]
        counts = Counter(view.rectification.value for view in own)
        veto = next((v for v in vetoes if v.township == code and v.year == year), None)
        mine = [n for n in notices if n.township == code and n.year == year]
        checks = [quarter_check(q, reports.get((code, q)), bus.get((code, q))) for q in quarters]
        rows.append(
            TownshipAssessment(
                township=code,
                township_name=name,
                talks=own,
                rectifications=RectificationCounts(
                    met=counts["met"],
                    met_late=counts["met_late"],
                    overdue=counts["overdue"],
                    open=counts["open"],
                ),
                praise=[_notice_view(n) for n in mine if n.kind == "praise"],
                criticism=[_notice_view(n) for n in mine if n.kind == "criticism"],
                veto=None if veto is None else VetoView(**veto.__dict__),
                reports_submitted=sum(
                    check.status in (ReportStatus.submitted, ReportStatus.received)
                    for check in checks
                ),
                reports_received=sum(check.status == ReportStatus.received for check in checks),
                quarters=checks,
            )
        )
    return Assessment(year=year, as_of=as_of, generated_at=generated_at, townships=rows)


def _notice_view(notice: Notice) -> NoticeView:
    return NoticeView(**notice.__dict__)
