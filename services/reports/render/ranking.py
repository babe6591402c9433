"""The annual satellite-enforcement ranking as CSV and as a page."""

from __future__ import annotations

from services.reports.ranking import RankingReport
from services.reports.render.charts import stacked_bars
from services.reports.render.labels import PALETTE
from services.reports.render.page import (
    Page,
    Section,
    csv_text,
    marked,
    nothing,
    page_html,
    table,
)

CSV_COLUMNS = (
    "rank",
    "township",
    "township_name",
    "year",
    "satellite_cases=cases",
    "basic_farmland_mu",
    "cultivated_mu",
    "large_cases",
    "flagged",
    "flag_reason",
)
HEADER = ["名次", "乡镇", "案件", "永久基本农田（亩）", "耕地（亩，含永农）", "大案", "标记"]
LARGE_HEADER = ["案件", "乡镇", "发现日期", "永久基本农田（亩）", "耕地（亩）", "依据"]


def ranking_csv(report: RankingReport) -> str:
    return csv_text(CSV_COLUMNS, report.rows, year=report.year)


def ranking_html(report: RankingReport) -> str:
    page = Page(
        title=f"{report.year}年度土地卫片执法乡镇排名",
        meta=[f"标记规则（市政府设定）: {report.rule}"],
        generated_at=report.generated_at,
        sections=_sections(report)
        or [nothing("本年度无卫片执法发现的案件 (no satellite findings this year).")],
        notes=[
            "统计卫片执法发现（来源为卫片）、发现日期在本年度内的案件；已被法院撤销的案件不计"
            f"（本年度 {report.revoked_excluded} 件）。",
            "标记：乡镇合计占用永久基本农田 5 亩以上或耕地 10 亩以上"
            "（含本数，耕地含永久基本农田），依 seed §四(五)。",
        ],
    )
    return page_html(page)


def _sections(report: RankingReport) -> list[Section]:
    if not report.rows:
        return []
    bars = [
        (
            row.township_name,
            [float(row.basic_farmland_mu), float(row.cultivated_mu - row.basic_farmland_mu)],
        )
        for row in report.rows
    ]
    series = [("永久基本农田", PALETTE[0]), ("一般耕地", PALETTE[1])]
    flagged = frozenset(row.township_name for row in report.rows if row.flagged)
    rows = [
        [
            row.rank,
            row.township_name,
            row.cases,
            row.basic_farmland_mu,
            row.cultivated_mu,
            row.large_cases,
            row.flag_reason,
        ]
        for row in report.rows
    ]
    chart = stacked_bars("占用耕地面积（亩）", bars, series, "亩", flagged)
    ranks = table(HEADER, rows, marked(report.rows, "flagged", lambda row: row.flagged))
    sections = [Section("卫片发现占用耕地面积", [chart]), Section("排名", [ranks])]
    if report.large_cases:
        large = [
            [c.case_id, c.township_name, c.found_on, c.basic_farmland_mu, c.cultivated_mu, c.reason]
            for c in report.large_cases
        ]
        sections.append(Section("达到追责标准的案件", [table(LARGE_HEADER, large)]))
    return sections
