"""The quarterly township report as CSV and as a page."""

from __future__ import annotations

from decimal import Decimal

from services.reports.render.charts import stacked_bars
from services.reports.render.labels import (
    LAND_LABELS,
    PALETTE,
    RECTIFICATION_TEXT,
    REPORT_STATUS_TEXT,
    SOURCE_LABELS,
)
from services.reports.render.page import (
    Section,
    csv_table,
    escaped,
    marked,
    nothing,
    period_page,
    table,
    text,
)
from services.reports.township import CLUE_SOURCES, LAND_CLASSES, TownshipFigures, TownshipReport
from services.reports.township_targets import TownshipTalk, TownshipTargets
from services.townships.domain import TARGET_LABELS

# What the quarter's figures show after the areas, as (CSV column, page heading), in the
# order the CSV and the page's township table both give them.
FLOWS = (
    ("cultivated_land_mu", "耕地合计（亩，含永农）"),
    ("accountability_referrals", "启动追责"),
    ("measures_applied", "采取措施"),
    ("measures_lifted", "解除措施"),
    ("restorations_verified", "复耕验收"),
)
# The talks table: each column's heading and the talk field it shows; the last column,
# 整改情况, is the rectification in words.
TALK_COLUMNS = (
    ("约谈", "talk_id"),
    ("乡镇", "township_name"),
    ("事由", "reason"),
    ("约谈日期", "talk_on"),
    ("整改期限", "rectify_by"),
    ("整改完成", "rectified_on"),
)
TALK_HEADER = [*(heading for heading, _ in TALK_COLUMNS), "整改情况"]
CSV_HEADER = [
    "township",
    "township_name",
    "quarter",
    "clues_total",
    *(f"clues_{source}" for source in CLUE_SOURCES),
    "cases_filed",
    *(f"area_mu_{land_class}" for land_class in LAND_CLASSES),
    *(column for column, _ in FLOWS),
    "open_cases_older_than_days",
    "open_cases_over_bound",
    "targets_status",
    *(f"{kind}_mu_{item}" for item in TARGET_LABELS for kind in ("target", "achieved")),
    "targets_unmet",
    "talks",
    "rectifications_overdue",
]


def township_csv(report: TownshipReport) -> str:
    entered = {entry.township: entry for entry in report.targets}
    return csv_table(
        CSV_HEADER,
        (
            [
                row.township,
                row.township_name,
                report.period,
                row.clues_total,
                *(row.clues_by_source.get(source, 0) for source in CLUE_SOURCES),
                row.cases_filed,
                *_areas(row),
                *_flows(row),
                report.older_than_days,
                row.open_cases_over_bound,
                *_target_cells(entered.get(row.township)),
                *_talk_counts(report, row.township),
            ]
            for row in report.rows
        ),
    )


def _areas(row: TownshipFigures) -> list[Decimal]:
    return [row.area_mu_by_land_class.get(cls, Decimal(0)) for cls in LAND_CLASSES]


def _target_cells(entry: TownshipTargets | None) -> list[object]:
    if entry is None:
        return ["missing", *([""] * (2 * len(TARGET_LABELS))), ""]
    by_item = {figure.item: figure for figure in entry.targets}
    cells: list[object] = [entry.status]
    for item in TARGET_LABELS:
        cells += [by_item[item].target, by_item[item].achieved]
    return [*cells, ";".join(entry.unmet)]


def _talk_counts(report: TownshipReport, township: str) -> tuple[int, int]:
    """The township's talks, and how many of their rectifications are overdue."""
    talks = [talk for talk in report.talks if talk.township == township]
    return len(talks), sum(talk.rectification == "overdue" for talk in talks)


def township_html(report: TownshipReport) -> str:
    sections = (
        _figure_sections(report)
        if report.rows
        else [nothing("本期无记录 (no activity recorded in this period).")]
    )
    scope = f"乡镇 Township: {report.township or '全部'}；未结案件统计截至 {text(report.as_of)}"
    sections = [*sections, *_targets_and_talks(report)]
    return period_page(report, "耕地保护责任落实情况季度报告", scope, sections, _notes(report))


def _notes(report: TownshipReport) -> list[str]:
    read = "、".join(report.departments_read) or "无"
    return [
        "线索按上报日期、复耕验收按验收日期计；立案、启动追责、措施采取与解除按系统记录时间"
        "在部署时区内的日期计。",
        "占地面积为本期立案案件当前测量的宗地面积；耕地合计含永久基本农田（seed §四(五)）。",
        f"采取/解除措施取自各部门自有数据表（已读取：{read}）。",
        "未结案件：截至统计时点已立案、尚未复耕验收、撤销或结案，且立案超过界限天数。",
    ]


def _figure_sections(report: TownshipReport) -> list[Section]:
    """The charts, the township table with its total, clue sources and old open cases."""
    bars = [(row.township_name, [float(area) for area in _areas(row)]) for row in report.rows]
    series = [(LAND_LABELS[cls], PALETTE[i]) for i, cls in enumerate(LAND_CLASSES)]
    clue_bars = [
        (SOURCE_LABELS.get(src, src), [float(report.totals.clues_by_source.get(src, 0))])
        for src in CLUE_SOURCES
    ]
    header = [
        "乡镇",
        "线索",
        "立案",
        *(f"{LAND_LABELS[cls]}（亩）" for cls in LAND_CLASSES),
        *(heading for _, heading in FLOWS),
        f"超{report.older_than_days}天未结案",
    ]
    rows = [_township_row(row) for row in [*report.rows, report.totals]]
    sources = [
        [row.township_name, *(row.clues_by_source.get(s, 0) for s in CLUE_SOURCES)]
        for row in report.rows
    ]
    sections = [
        Section(
            "立案占地面积（按地类）",
            [
                stacked_bars("立案占地面积（亩）", bars, series, "亩"),
                stacked_bars("线索来源（件）", clue_bars, [("线索", PALETTE[5])], "件"),
            ],
        ),
        Section("各乡镇数据", [table(header, rows, [""] * len(report.rows) + ["total"])]),
        Section(
            "线索来源明细",
            [table(["乡镇", *(SOURCE_LABELS.get(s, s) for s in CLUE_SOURCES)], sources)],
        ),
    ]
    overdue = [
        f"<li>{escaped(row.township_name)}：{escaped('、'.join(row.open_case_ids))}</li>"
        for row in report.rows
        if row.open_case_ids
    ]
    if overdue:
        heading = f"立案超过{report.older_than_days}天仍未结案的案件"
        sections.append(Section(heading, ["<ul>", *overdue, "</ul>"]))
    return sections


def _township_row(row: TownshipFigures) -> list[object]:
    return [
        row.township_name,
        row.clues_total,
        row.cases_filed,
        *_areas(row),
        *_flows(row),
        row.open_cases_over_bound,
    ]


def _flows(row: TownshipFigures) -> list[object]:
    """Cultivated area, accountability, measures applied and lifted, restorations."""
    return [getattr(row, column) for column, _ in FLOWS]


def _targets_and_talks(report: TownshipReport) -> list[Section]:
    """The responsibility targets the townships entered (§四(一)) and their warning talks."""
    sections: list[Section] = []
    if report.targets:
        labels = [figure.label for figure in report.targets[0].targets]
        header = ["乡镇", "状态", *(f"{label}（完成/目标）" for label in labels), "未完成"]
        rows = [_target_row(entry) for entry in report.targets]
        classes = marked(report.targets, "flagged", lambda entry: bool(entry.unmet))
        sections.append(Section("耕地保护责任目标（乡镇填报，亩）", [table(header, rows, classes)]))
    if report.talks:
        talks = [_talk_row(talk) for talk in report.talks]
        overdue = marked(report.talks, "flagged", lambda talk: talk.rectification == "overdue")
        sections.append(Section("警示约谈与限时整改", [table(TALK_HEADER, talks, overdue)]))
    return sections


def _target_row(entry: TownshipTargets) -> list[object]:
    return [
        entry.township_name,
        REPORT_STATUS_TEXT.get(entry.status, entry.status),
        *(f"{f.achieved} / {f.target}" for f in entry.targets),
        "；".join(entry.unmet) or "均已完成",
    ]


def _talk_row(talk: TownshipTalk) -> list[object]:
    return [
        *(getattr(talk, column) for _, column in TALK_COLUMNS),
        RECTIFICATION_TEXT.get(talk.rectification, talk.rectification),
    ]
