"""The department response record as CSV and as a page."""

from __future__ import annotations

from services.reports.department import DepartmentFigures, DepartmentReport
from services.reports.outcomes import OUTCOMES
from services.reports.render.charts import stacked_bars
from services.reports.render.labels import OUTCOME_COLOURS, OUTCOME_LABELS
from services.reports.render.page import (
    Section,
    csv_text,
    nothing,
    period_page,
    table,
    text,
)

CSV_COLUMNS = (
    "department",
    "department_name",
    "period",
    "required",
    "lifts_required",
    *OUTCOMES,
    "on_time_rate_percent=on_time_rate",
    "median_response_hours",
    "p95_response_hours",
)
HEADER = [
    "部门",
    "要求",
    "其中解除",
    "按期",
    "逾期完成",
    "报告失败",
    "逾期未响应",
    "未到期",
    "按期率",
    "响应时间中位数（小时）",
    "响应时间P95（小时）",
]
NOTES = (
    "要求（采取或解除措施）按反馈跟踪记录的要求时间计入期间；按期 = 在期限内完成，"
    "逾期未响应 = 已过期限仍无答复，未到期 = 尚在期限内。",
    "按期率 = 按期 ÷（要求 − 未到期）。响应时间为要求至完成的时长，"
    "百分位数按相邻秩线性插值（同 PostgreSQL percentile_cont）。",
)


def departments_csv(report: DepartmentReport) -> str:
    return csv_text(CSV_COLUMNS, report.rows, period=report.period)


def departments_html(report: DepartmentReport) -> str:
    if report.rows:
        bars = [
            (row.department_name, [float(getattr(row, outcome)) for outcome in OUTCOMES])
            for row in report.rows
        ]
        series = [(OUTCOME_LABELS[o], OUTCOME_COLOURS[o]) for o in OUTCOMES]
        rows = [_department_row(row) for row in [*report.rows, report.totals]]
        sections = [
            Section("响应情况", [stacked_bars("各部门响应情况（项）", bars, series, "项")]),
            Section("各部门数据", [table(HEADER, rows, [""] * len(report.rows) + ["total"])]),
        ]
    else:
        sections = [nothing("本期无要求记录 (no requirement in this period).")]
    scope = f"部门 Department: {report.department or '全部'}；统计截至 {text(report.as_of)}"
    return period_page(report, "部门履职响应记录", scope, sections, NOTES)


def _department_row(row: DepartmentFigures) -> list[object]:
    return [
        row.department_name,
        row.required,
        row.lifts_required,
        *(getattr(row, outcome) for outcome in OUTCOMES),
        "" if row.on_time_rate is None else f"{row.on_time_rate}%",
        row.median_response_hours,
        row.p95_response_hours,
    ]
