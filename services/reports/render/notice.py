"""The public notice of typical cases as CSV and as a page."""

from __future__ import annotations

from typing import Any

from services.reports.notice import NoticeCase, NoticeReport
from services.reports.render.labels import (
    LAND_LABELS,
    RECTIFICATION_LABELS,
    SOURCE_LABELS,
    STATUS_LABELS,
    VIOLATION_LABELS,
)
from services.reports.render.page import (
    Page,
    Section,
    csv_text,
    escaped,
    nothing,
    page_html,
    text,
)

CSV_COLUMNS = (
    "case_id",
    "township_name",
    "subject_kind",
    "subject_name",
    "subject_id",
    "violation_kind",
    "found_on",
    "basic_farmland_mu",
    "cultivated_mu",
    "accountability_started",
    "decision_no",
    "decided_on",
    "fine_yuan",
    "rectifications",
    "restoration_verified_on",
    "closed_on",
    "status",
    "penalty_summary",
)
NOTES = (
    "依 seed §四(六) 加大对违法占用耕地典型案件的曝光力度。",
    "自然人姓名仅保留姓氏，证件号码仅保留前四位与后两位；被法院撤销的案件不予通报。",
)


def notice_csv(report: NoticeReport) -> str:
    return csv_text(CSV_COLUMNS, report.cases)


def _notice_article(case: NoticeCase) -> str:
    parcels = "；".join(
        f"{LAND_LABELS.get(p.land_class, p.land_class)} {text(p.area_mu)} 亩" for p in case.parcels
    )
    actions = "、".join(RECTIFICATION_LABELS.get(a, a) for a in case.rectifications) or "尚未整改"
    facts: list[tuple[str, Any]] = [
        ("当事人", f"{case.subject_name}（{case.subject_id}）"),
        ("所在乡镇", case.township_name),
        ("违法类型", VIOLATION_LABELS.get(case.violation_kind, case.violation_kind)),
        ("发现方式", SOURCE_LABELS.get(case.source, case.source)),
        ("发现日期", case.found_on),
        ("占地情况", parcels),
        ("启动责任追究", case.accountability_started),
        ("处罚决定", f"{case.decision_no}（{text(case.decided_on)}）"),
        ("罚款（元）", case.fine_yuan),
        ("处罚内容", case.penalty_summary),
        ("整改", actions),
        ("复耕验收", case.restoration_verified_on or "尚未验收"),
        ("办理状态", STATUS_LABELS.get(case.status, case.status)),
    ]
    items = "".join(f"<dt>{escaped(name)}</dt><dd>{escaped(value)}</dd>" for name, value in facts)
    return f'<article class="case"><h2>{escaped(case.case_id)}</h2><dl>{items}</dl></article>'


def notice_html(report: NoticeReport) -> str:
    articles = [_notice_article(case) for case in report.cases]
    page = Page(
        title="违法占用耕地典型案件通报",
        meta=[f"案件选择 Selection: {report.selection}"],
        generated_at=report.generated_at,
        sections=[Section("", articles)]
        if articles
        else [nothing("无符合条件的案件 (no publishable case in this selection).")],
        notes=NOTES,
    )
    return page_html(page)
