"""Township accountability, pure (seed §四(三), §四(五)): warning talks (警示约谈) with their
rectification deadlines (限时整改), public praise and criticism (通报表扬/通报批评), the
one-vote veto (一票否决), and the quarterly report of the responsibility targets (§四(一))
checked against what the bus knows. No I/O: the handlers read and write; these functions
decide what a command may do and what a record means on a given day.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from events.models import DecimalStr, Id, NonEmptyText, Text
from services.errors import InvalidInput, RedlineError

EARLIEST_YEAR = 2000
# Xiaoyi covers 937.56 km² ≈ 1.41 million mu: no township figure can exceed 1.5 million.
MAX_TOWNSHIP_MU = Decimal(1_500_000)
MU_DECIMAL_PLACES = 4
# Figures entered and figures the bus holds are compared to the hundredth of a mu.
TOLERANCE_MU = Decimal("0.01")
MAX_CASES_CITED = 50
MAX_OPEN_CASES = 100_000


class StateError(RedlineError):
    """A command the record's current state does not allow (HTTP 409); both are named."""


class NotYours(RedlineError):
    """A township acting on another township's record (HTTP 403)."""


class NotFound(RedlineError):
    """No such talk or report (HTTP 404)."""


# --- input --------------------------------------------------------------------------


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


def _places(value: Decimal) -> Decimal:
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MU_DECIMAL_PLACES:
        raise ValueError(f"at most {MU_DECIMAL_PLACES} decimal places, got {value}")
    return value


Mu = Annotated[DecimalStr, Field(ge=0, le=int(MAX_TOWNSHIP_MU))]
Year = Annotated[int, Field(ge=EARLIEST_YEAR, le=2100)]
CaseId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class TalkRequest(_Input):
    """Natural resources asks the city government to hold a warning talk with a township
    whose farmland work falls short (seed §二: 提请市人民政府…开展警示约谈)."""

    township: Id
    reason: NonEmptyText
    cases: list[CaseId] = Field(default_factory=list, max_length=MAX_CASES_CITED)

    @field_validator("cases")
    @classmethod
    def _distinct(cls, cases: list[str]) -> list[str]:
        return list(dict.fromkeys(cases))


class TalkDecision(_Input):
    """The city government's answer: approve with the talk's date and the deadline for
    rectification (限时整改), or decline with a reason."""

    decision: Literal["approve", "decline"]
    talk_on: date | None = None
    rectify_by: date | None = None
    reason: Text = ""


class RectificationReport(_Input):
    """The township reports its rectification done."""

    completed_on: date
    summary: NonEmptyText


class NoticeDetails(_Input):
    """通报表扬 or 通报批评 of a township for a year, with the text as published."""

    year: Year
    kind: Literal["praise", "criticism"]
    text: NonEmptyText


class VetoDetails(_Input):
    """一票否决 in a township's annual assessment (§四(三): 重大问题"一票否决")."""

    year: Year
    reason: NonEmptyText


class Target(_Input):
    """One responsibility target for the quarter, in mu: what was set and what was done."""

    target: Mu
    achieved: Mu

    @field_validator("target", "achieved")
    @classmethod
    def _at_most_four_places(cls, value: Decimal) -> Decimal:
        return _places(value)

    @property
    def met(self) -> bool:
        return self.achieved >= self.target


TARGET_LABELS: dict[str, str] = {
    "cultivated_land": "耕地保有量",
    "basic_farmland": "永久基本农田保护面积",
    "occupation_compensation": "耕地占补平衡",
    "inflow_outflow": "耕地进出平衡",
    "high_standard_farmland": "高标准农田建设",
}


class ResponsibilityTargets(_Input):
    """The tasks each township answers for under its responsibility letter (§四(一))."""

    cultivated_land: Target  # 耕地保有量
    basic_farmland: Target  # 永久基本农田保护面积
    occupation_compensation: Target  # 耕地占补平衡: cultivated land to supplement, supplemented
    inflow_outflow: Target  # 耕地进出平衡: cultivated land to bring back, brought back
    high_standard_farmland: Target  # 高标准农田建设: area to build, built

    def items(self) -> list[tuple[str, Target]]:
        return [(name, getattr(self, name)) for name in TARGET_LABELS]


class StatedFindings(_Input):
    """What the township says it found in the quarter: compared with the bus's records."""

    cultivated_occupied_mu: Mu  # cultivated land (basic farmland included) found occupied
    basic_farmland_occupied_mu: Mu
    restored_mu: Mu  # occupied land restored and verified (复耕验收) in the quarter
    open_cases: Annotated[int, Field(ge=0, le=MAX_OPEN_CASES)]

    @field_validator("cultivated_occupied_mu", "basic_farmland_occupied_mu", "restored_mu")
    @classmethod
    def _at_most_four_places(cls, value: Decimal) -> Decimal:
        return _places(value)


class QuarterFigures(_Input):
    """每季度向市政府书面汇报: the targets and the quarter's findings, as the township enters
    them."""

    targets: ResponsibilityTargets
    findings: StatedFindings
    note: Text = ""


# --- warning talks ------------------------------------------------------------------


class TalkStatus(StrEnum):
    requested = "requested"
    approved = "approved"
    declined = "declined"
    rectified = "rectified"


class Rectification(StrEnum):
    """Where a talk's rectification stands on a day."""

    none = "none"  # no deadline: not (yet) approved, or declined
    open = "open"  # deadline not passed, not reported done
    overdue = "overdue"  # deadline passed, not reported done
    met = "met"  # reported done by the deadline
    met_late = "met_late"  # reported done after the deadline


@dataclass(frozen=True)
class Talk:
    talk_id: str
    township: str
    reason: str
    cases: tuple[str, ...]
    requested_by: str
    requested_at: datetime
    status: TalkStatus = TalkStatus.requested
    decided_by: str | None = None
    decided_at: datetime | None = None
    talk_on: date | None = None
    rectify_by: date | None = None
    decision_reason: str | None = None
    rectified_on: date | None = None
    rectification_summary: str | None = None
    rectified_by: str | None = None


def new_talk(
    talk_id: str, request: TalkRequest, *, by: str, at: datetime, known: Iterable[str]
) -> Talk:
    if request.township not in set(known):
        raise InvalidInput("township", f"unknown township {request.township!r}")
    return Talk(talk_id, request.township, request.reason, tuple(request.cases), by, at)


def decide_talk(talk: Talk, decision: TalkDecision, *, by: str, at: datetime, today: date) -> Talk:
    """requested → approved (talk date and deadline) or declined (reason)."""
    if talk.status is not TalkStatus.requested:
        raise StateError(
            f"talk {talk.talk_id} is {talk.status}; only a requested talk can be decided"
        )
    if decision.decision == "decline":
        if not decision.reason.strip():
            raise InvalidInput("reason", "required when declining a talk")
        if decision.talk_on is not None or decision.rectify_by is not None:
            field = "talk_on" if decision.talk_on is not None else "rectify_by"
            raise InvalidInput(field, "only an approved talk has a date and a deadline")
        return replace(
            talk,
            status=TalkStatus.declined,
            decided_by=by,
            decided_at=at,
            decision_reason=decision.reason,
        )
    if decision.talk_on is None:
        raise InvalidInput("talk_on", "required when approving: the day of the talk")
    if decision.rectify_by is None:
        raise InvalidInput("rectify_by", "required when approving: the rectification deadline")
    if decision.talk_on < today:
        raise InvalidInput("talk_on", f"{decision.talk_on} has passed (today is {today})")
    if decision.rectify_by <= decision.talk_on:
        raise InvalidInput(
            "rectify_by",
            f"{decision.rectify_by} must be after the talk on {decision.talk_on}",
        )
    return replace(
        talk,
        status=TalkStatus.approved,
        decided_by=by,
        decided_at=at,
        talk_on=decision.talk_on,
        rectify_by=decision.rectify_by,
        decision_reason=decision.reason or None,
    )


def record_rectification(
    talk: Talk, report: RectificationReport, *, township: str, by: str, today: date
) -> Talk:
    """approved → rectified, by the talk's own township only."""
    if talk.township != township:
        raise NotYours(f"talk {talk.talk_id} is {talk.township}'s, not {township}'s")
    if talk.status is not TalkStatus.approved:
        raise StateError(
            f"talk {talk.talk_id} is {talk.status}; only an approved talk's rectification "
            "can be reported"
        )
    if report.completed_on > today:
        raise InvalidInput("completed_on", f"{report.completed_on} is in the future")
    if talk.talk_on is not None and report.completed_on < talk.talk_on:
        raise InvalidInput(
            "completed_on", f"{report.completed_on} is before the talk on {talk.talk_on}"
        )
    return replace(
        talk,
        status=TalkStatus.rectified,
        rectified_on=report.completed_on,
        rectification_summary=report.summary,
        rectified_by=by,
    )


def rectification(talk: Talk, today: date) -> Rectification:
    """Overdue the day after the deadline passes without the township reporting it done."""
    if talk.rectify_by is None:
        return Rectification.none
    if talk.rectified_on is not None:
        return Rectification.met if talk.rectified_on <= talk.rectify_by else Rectification.met_late
    return Rectification.overdue if today > talk.rectify_by else Rectification.open


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
    found: list[Finding] = []
    for name, target in figures.targets.items():
        if not target.met:
            found.append(
                Finding(
                    item=name,
                    label=TARGET_LABELS[name],
                    check="unmet_target",
                    entered=target.achieved,
                    bus=None,
                    message=f"{TARGET_LABELS[name]}: 完成 {target.achieved} 亩，"
                    f"低于目标 {target.target} 亩",
                )
            )
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
    for name, entered, held in pairs:
        if abs(entered - held) > TOLERANCE_MU:
            found.append(
                Finding(
                    item=name,
                    label=FINDING_LABELS[name],
                    check="discrepancy",
                    entered=entered,
                    bus=held,
                    message=f"{FINDING_LABELS[name]}: 填报 {entered} 亩，平台记录 {held} 亩",
                )
            )
    if stated.open_cases != bus.open_cases:
        found.append(
            Finding(
                item="open_cases",
                label=FINDING_LABELS["open_cases"],
                check="discrepancy",
                entered=Decimal(stated.open_cases),
                bus=Decimal(bus.open_cases),
                message=f"未结案件: 填报 {stated.open_cases} 件，平台记录 {bus.open_cases} 件",
            )
        )
    net_basic = bus.basic_farmland_occupied_mu - bus.restored_mu
    net_cultivated = bus.cultivated_occupied_mu - bus.restored_mu
    for name, net in (("basic_farmland", net_basic), ("cultivated_land", net_cultivated)):
        target = getattr(figures.targets, name)
        if target.met and net > TOLERANCE_MU:
            found.append(
                Finding(
                    item=name,
                    label=TARGET_LABELS[name],
                    check="to_verify",
                    entered=target.achieved,
                    bus=net,
                    message=f"{TARGET_LABELS[name]}: 填报已完成，但平台记录本季度被占用且未复耕 "
                    f"{net} 亩，请核实",
                )
            )
    return found


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


def assessment(
    *,
    year: int,
    today: date,
    generated_at: datetime,
    names: Mapping[str, str],
    talks: Sequence[Talk],
    notices: Sequence[Notice],
    vetoes: Sequence[Veto],
    reports: Mapping[tuple[str, str], QuarterReport],
    bus: Mapping[tuple[str, str], BusFigures],
) -> Assessment:
    """Every township in `names`' order (the townships file's), whether or not anything was
    recorded for it: an empty row is itself a result."""
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
