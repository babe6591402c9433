"""Reports as files: CSV for spreadsheets and HTML (with inline SVG charts) for people.

Every piece of text that reaches HTML goes through `_e` (html.escape), attributes too; CSV
cells that a spreadsheet would run as a formula are quoted as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from html import escape
from typing import Any

from services.reports.domain import (
    CLUE_SOURCES,
    LAND_CLASSES,
    DepartmentFigures,
    DepartmentReport,
    NoticeCase,
    NoticeReport,
    RankingReport,
    Report,
    TownshipFigures,
    TownshipReport,
)

SOURCE_LABELS = {
    "satellite": "卫片执法",
    "drone": "无人机",
    "camera": "摄像头",
    "patrol": "巡查",
    "petition": "信访",
    "tip": "举报",
    "media": "媒体曝光",
    "online": "网络舆情",
}
LAND_LABELS = {
    "permanent_basic_farmland": "永久基本农田",
    "cultivated": "一般耕地",
    "other_agricultural": "其他农用地",
    "construction": "建设用地",
    "unused": "未利用地",
}
VIOLATION_LABELS = {
    "illegal_construction": "违法建设",
    "illegal_occupation": "非法占地",
    "unauthorised_change_of_use": "擅自改变土地用途",
    "illegal_mining": "非法采矿",
    "greenhouse_housing": "大棚房",
}
RECTIFICATION_LABELS = {
    "demolition": "拆除",
    "confiscation": "没收",
    "restoration_works": "复垦复耕",
    "other": "其他",
}
STATUS_LABELS = {
    "filed": "已立案",
    "penalty_decided": "已作出处罚决定",
    "rectified": "已整改",
    "restored": "已复耕验收",
    "revoked": "已撤销",
    "legalised": "已补办用地手续",
    "confiscated": "已没收到位",
    "closed": "已结案",
}
PALETTE = ("#2f6f4e", "#8cbf6a", "#c9a227", "#8a6d3b", "#a0a0a0", "#4a7fb5", "#b5524a", "#7a5195")
OUTCOME_COLOURS = {
    "on_time": "#2f6f4e",
    "late": "#c9a227",
    "failed": "#b5524a",
    "unanswered": "#6b2d2a",
    "pending": "#a0a0a0",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _e(value: object) -> str:
    return escape(_text(value), quote=True)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# --- CSV ------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _text(value)
    numeric = isinstance(value, int | float | Decimal)
    return "'" + text if not numeric and text.startswith(_FORMULA_START) else text


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """UTF-8 with a byte-order mark, so a spreadsheet shows the Chinese names correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return "\ufeff" + out.getvalue()


def township_csv(report: TownshipReport) -> str:
    header = [
        "township",
        "township_name",
        "quarter",
        "clues_total",
        *(f"clues_{source}" for source in CLUE_SOURCES),
        "cases_filed",
        *(f"area_mu_{land_class}" for land_class in LAND_CLASSES),
        "cultivated_land_mu",
        "accountability_referrals",
        "measures_applied",
        "measures_lifted",
        "restorations_verified",
        "open_cases_older_than_days",
        "open_cases_over_bound",
    ]
    rows = [
        [
            row.township,
            row.township_name,
            report.period,
            row.clues_total,
            *(row.clues_by_source.get(source, 0) for source in CLUE_SOURCES),
            row.cases_filed,
            *(row.area_mu_by_land_class.get(cls, Decimal(0)) for cls in LAND_CLASSES),
            row.cultivated_land_mu,
            row.accountability_referrals,
            row.measures_applied,
            row.measures_lifted,
            row.restorations_verified,
            report.older_than_days,
            row.open_cases_over_bound,
        ]
        for row in report.rows
    ]
    return _csv(header, rows)


def departments_csv(report: DepartmentReport) -> str:
    header = [
        "department",
        "department_name",
        "period",
        "required",
        "lifts_required",
        "on_time",
        "late",
        "failed",
        "unanswered",
        "pending",
        "on_time_rate_percent",
        "median_response_hours",
        "p95_response_hours",
    ]
    rows = [
        [
            row.department,
            row.department_name,
            report.period,
            row.required,
            row.lifts_required,
            row.on_time,
            row.late,
            row.failed,
            row.unanswered,
            row.pending,
            row.on_time_rate,
            row.median_response_hours,
            row.p95_response_hours,
        ]
        for row in report.rows
    ]
    return _csv(header, rows)


def ranking_csv(report: RankingReport) -> str:
    header = [
        "rank",
        "township",
        "township_name",
        "year",
        "satellite_cases",
        "basic_farmland_mu",
        "cultivated_mu",
        "large_cases",
        "flagged",
        "flag_reason",
    ]
    rows = [
        [
            row.rank,
            row.township,
            row.township_name,
            report.year,
            row.cases,
            row.basic_farmland_mu,
            row.cultivated_mu,
            row.large_cases,
            row.flagged,
            row.flag_reason,
        ]
        for row in report.rows
    ]
    return _csv(header, rows)


def notice_csv(report: NoticeReport) -> str:
    header = [
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
    ]
    rows = [
        [
            case.case_id,
            case.township_name,
            case.subject_kind,
            case.subject_name,
            case.subject_id,
            case.violation_kind,
            case.found_on,
            case.basic_farmland_mu,
            case.cultivated_mu,
            case.accountability_started,
            case.decision_no,
            case.decided_on,
            case.fine_yuan,
            ";".join(case.rectifications),
            case.restoration_verified_on,
            case.closed_on,
            case.status,
            case.penalty_summary,
        ]
        for case in report.cases
    ]
    return _csv(header, rows)


def to_csv(report: Report) -> str:
    if isinstance(report, TownshipReport):
        return township_csv(report)
    if isinstance(report, DepartmentReport):
        return departments_csv(report)
    if isinstance(report, RankingReport):
        return ranking_csv(report)
    return notice_csv(report)


# --- SVG charts -------------------------------------------------------------------------

Bar = tuple[str, Sequence[float]]


def _number(value: float) -> str:
    """Up to three decimals (areas are surveyed to the thousandth of a mu), no trailing 0s."""
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def stacked_bars(
    title: str,
    bars: Sequence[Bar],
    series: Sequence[tuple[str, str]],
    unit: str,
    highlight: frozenset[str] = frozenset(),
) -> str:
    """A horizontal stacked bar chart: one bar per label, one segment per series."""
    label_width, chart_width, bar_height, gap, top = 150, 520, 18, 8, 34
    legend_height = 22
    height = top + len(bars) * (bar_height + gap) + legend_height + 10
    largest = max((sum(values) for _, values in bars), default=0.0) or 1.0
    width = label_width + chart_width + 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">',
        f"<title>{_e(title)}</title>",
        f'<text x="0" y="18" class="chart-title">{_e(title)}</text>',
    ]
    for index, (label, values) in enumerate(bars):
        y = top + index * (bar_height + gap)
        colour = ' fill="#b5524a"' if label in highlight else ""
        parts.append(
            f'<text x="{label_width - 6}" y="{y + bar_height - 4}" text-anchor="end"{colour}>'
            f"{_e(label)}</text>"
        )
        x = float(label_width)
        for (name, fill), value in zip(series, values, strict=True):
            segment = chart_width * value / largest
            if segment > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{segment:.1f}" height="{bar_height}" '
                    f'fill="{_e(fill)}"><title>{_e(label)} {_e(name)}: '
                    f"{_e(_number(value))} {_e(unit)}</title></rect>"
                )
            x += segment
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + bar_height - 4}">'
            f"{_e(_number(sum(values)))} {_e(unit)}</text>"
        )
    legend_y = top + len(bars) * (bar_height + gap) + 6
    x = float(label_width)
    for name, fill in series if len(series) > 1 else ():
        parts.append(
            f'<rect x="{x:.1f}" y="{legend_y}" width="12" height="12" fill="{_e(fill)}"/>'
            f'<text x="{x + 16:.1f}" y="{legend_y + 11}">{_e(name)}</text>'
        )
        x += 24 + 13 * len(name)
    parts.append("</svg>")
    return "".join(parts)


# --- HTML -----------------------------------------------------------------------------

# Installed fonts only, nothing fetched (reports are read on networks with no way out): the
# CJK fonts of Linux desktops (Noto / Source Han, the same design under two names; WenQuanYi
# on older ones), of Windows and of macOS, then whatever sans-serif the reader has.
FONTS = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei", '
    '"Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", sans-serif'
)
# The page may load nothing at all: its style is inline and its charts are inline SVG, and
# a browser that opens it (from the API, a mail or a file share) is told to fetch nothing.
CONTENT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_RULES = """
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #f3f3f3; }
tr.flagged td { background: #fbeaea; }
svg text { font-size: 12px; } svg .chart-title { font-size: 14px; font-weight: bold; }
.meta, footer { color: #555; font-size: 0.85em; }
article.case { border-top: 1px solid #ccc; padding-top: 0.5em; }
"""
_STYLE = f"body {{ font-family: {FONTS}; margin: 2em; color: #222; }}{_RULES}"


def _page(title: str, meta: Sequence[str], body: Sequence[str], notes: Sequence[str]) -> str:
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">',
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
            f"<header><h1>{_e(title)}</h1>",
            *(f'<p class="meta">{_e(line)}</p>' for line in meta),
            "</header><main>",
            *body,
            "</main><footer>",
            *(f"<p>{_e(note)}</p>" for note in notes),
            "</footer></body></html>\n",
        ]
    )


def _table(
    header: Sequence[str], rows: Sequence[Sequence[object]], classes: Sequence[str] = ()
) -> str:
    head = "".join(f"<th>{_e(name)}</th>" for name in header)
    lines = []
    for index, row in enumerate(rows):
        css = classes[index] if index < len(classes) and classes[index] else ""
        cells = "".join(
            f'<td class="n">{_e(value)}</td>'
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool)
            else f"<td>{_e(value)}</td>"
            for value in row
        )
        lines.append(f'<tr class="{_e(css)}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def _empty(what: str) -> str:
    return f"<p><strong>{_e(what)}</strong></p>"


def _township_row(row: TownshipFigures) -> list[object]:
    return [
        row.township_name,
        row.clues_total,
        row.cases_filed,
        *(row.area_mu_by_land_class.get(cls, Decimal(0)) for cls in LAND_CLASSES),
        row.cultivated_land_mu,
        row.accountability_referrals,
        row.measures_applied,
        row.measures_lifted,
        row.restorations_verified,
        row.open_cases_over_bound,
    ]


def township_html(report: TownshipReport) -> str:
    title = f"耕地保护责任落实情况季度报告 {report.period}"
    meta = [
        f"期间 Period: {report.first_day} 至 {report.last_day}（{report.timezone}）",
        f"乡镇 Township: {report.township or '全部'}；未结案件统计截至 {_text(report.as_of)}",
        f"生成时间 Generated: {_text(report.generated_at)}",
    ]
    body: list[str] = []
    if not report.rows:
        body.append(_empty("本期无记录 (no activity recorded in this period)."))
    else:
        bars = [
            (
                row.township_name,
                [float(row.area_mu_by_land_class.get(cls, Decimal(0))) for cls in LAND_CLASSES],
            )
            for row in report.rows
        ]
        series = [(LAND_LABELS[cls], PALETTE[i]) for i, cls in enumerate(LAND_CLASSES)]
        body.append("<section><h2>立案占地面积（按地类）</h2>")
        body.append(stacked_bars("立案占地面积（亩）", bars, series, "亩"))
        clue_bars = [
            (SOURCE_LABELS.get(src, src), [float(report.totals.clues_by_source.get(src, 0))])
            for src in CLUE_SOURCES
        ]
        body.append(stacked_bars("线索来源（件）", clue_bars, [("线索", PALETTE[5])], "件"))
        body.append("</section><section><h2>各乡镇数据</h2>")
        header = [
            "乡镇",
            "线索",
            "立案",
            *(f"{LAND_LABELS[cls]}（亩）" for cls in LAND_CLASSES),
            "耕地合计（亩，含永农）",
            "启动追责",
            "采取措施",
            "解除措施",
            "复耕验收",
            f"超{report.older_than_days}天未结案",
        ]
        rows = [_township_row(row) for row in [*report.rows, report.totals]]
        classes = [""] * len(report.rows) + ["total"]
        body.append(_table(header, rows, classes))
        body.append("<h2>线索来源明细</h2>")
        body.append(
            _table(
                ["乡镇", *(SOURCE_LABELS.get(src, src) for src in CLUE_SOURCES)],
                [
                    [row.township_name, *(row.clues_by_source.get(s, 0) for s in CLUE_SOURCES)]
                    for row in report.rows
                ],
            )
        )
        overdue = [row for row in report.rows if row.open_case_ids]
        if overdue:
            body.append(f"<h2>立案超过{report.older_than_days}天仍未结案的案件</h2><ul>")
            body.extend(
                f"<li>{_e(row.township_name)}：{_e('、'.join(row.open_case_ids))}</li>"
                for row in overdue
            )
            body.append("</ul>")
        body.append("</section>")
    notes = [
        "线索按上报日期、复耕验收按验收日期计；立案、启动追责、措施采取与解除按系统记录时间"
        "在部署时区内的日期计。",
        "占地面积为本期立案案件当前测量的宗地面积；耕地合计含永久基本农田（seed §四(五)）。",
        "采取/解除措施取自各部门自有数据表（已读取："
        + ("、".join(report.departments_read) or "无")
        + "）。",
        "未结案件：截至统计时点已立案、尚未复耕验收、撤销或结案，且立案超过界限天数。",
    ]
    return _page(title, meta, body, notes)


def _department_row(row: DepartmentFigures) -> list[object]:
    return [
        row.department_name,
        row.required,
        row.lifts_required,
        row.on_time,
        row.late,
        row.failed,
        row.unanswered,
        row.pending,
        "" if row.on_time_rate is None else f"{row.on_time_rate}%",
        row.median_response_hours,
        row.p95_response_hours,
    ]


def departments_html(report: DepartmentReport) -> str:
    title = f"部门履职响应记录 {report.period}"
    meta = [
        f"期间 Period: {report.first_day} 至 {report.last_day}（{report.timezone}）",
        f"部门 Department: {report.department or '全部'}；统计截至 {_text(report.as_of)}",
        f"生成时间 Generated: {_text(report.generated_at)}",
    ]
    body: list[str] = []
    if not report.rows:
        body.append(_empty("本期无要求记录 (no requirement in this period)."))
    else:
        outcomes = ("on_time", "late", "failed", "unanswered", "pending")
        names = {
            "on_time": "按期",
            "late": "逾期完成",
            "failed": "报告失败",
            "unanswered": "逾期未响应",
            "pending": "未到期",
        }
        bars = [
            (row.department_name, [float(getattr(row, outcome)) for outcome in outcomes])
            for row in report.rows
        ]
        series = [(names[o], OUTCOME_COLOURS[o]) for o in outcomes]
        body.append("<section><h2>响应情况</h2>")
        body.append(stacked_bars("各部门响应情况（项）", bars, series, "项"))
        body.append("</section><section><h2>各部门数据</h2>")
        header = [
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
        rows = [_department_row(row) for row in [*report.rows, report.totals]]
        body.append(_table(header, rows, [""] * len(report.rows) + ["total"]))
        body.append("</section>")
    notes = [
        "要求（采取或解除措施）按反馈跟踪记录的要求时间计入期间；按期 = 在期限内完成，"
        "逾期未响应 = 已过期限仍无答复，未到期 = 尚在期限内。",
        "按期率 = 按期 ÷（要求 − 未到期）。响应时间为要求至完成的时长，"
        "百分位数按相邻秩线性插值（同 PostgreSQL percentile_cont）。",
    ]
    return _page(title, meta, body, notes)


def ranking_html(report: RankingReport) -> str:
    title = f"{report.year}年度土地卫片执法乡镇排名"
    meta = [f"生成时间 Generated: {_text(report.generated_at)}"]
    body: list[str] = []
    if not report.rows:
        body.append(_empty("本年度无卫片执法发现的案件 (no satellite findings this year)."))
    else:
        bars = [
            (
                row.township_name,
                [float(row.basic_farmland_mu), float(row.cultivated_mu - row.basic_farmland_mu)],
            )
            for row in report.rows
        ]
        series = [("永久基本农田", PALETTE[0]), ("一般耕地", PALETTE[1])]
        flagged = frozenset(row.township_name for row in report.rows if row.flagged)
        body.append("<section><h2>卫片发现占用耕地面积</h2>")
        body.append(stacked_bars("占用耕地面积（亩）", bars, series, "亩", flagged))
        body.append("</section><section><h2>排名</h2>")
        header = [
            "名次",
            "乡镇",
            "案件",
            "永久基本农田（亩）",
            "耕地（亩，含永农）",
            "大案",
            "标记",
        ]
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
        body.append(_table(header, rows, ["flagged" if row.flagged else "" for row in report.rows]))
        if report.large_cases:
            body.append("<h2>达到追责标准的案件</h2>")
            body.append(
                _table(
                    ["案件", "乡镇", "发现日期", "永久基本农田（亩）", "耕地（亩）", "依据"],
                    [
                        [
                            case.case_id,
                            case.township_name,
                            case.found_on,
                            case.basic_farmland_mu,
                            case.cultivated_mu,
                            case.reason,
                        ]
                        for case in report.large_cases
                    ],
                )
            )
        body.append("</section>")
    notes = [
        "统计卫片执法发现（来源为卫片）、发现日期在本年度内的案件；已被法院撤销的案件不计"
        f"（本年度 {report.revoked_excluded} 件）。",
        "标记：乡镇合计占用永久基本农田 5 亩以上或耕地 10 亩以上（含本数，耕地含永久基本农田），"
        "依 seed §四(五)。",
    ]
    return _page(title, meta, body, notes)


def _notice_article(case: NoticeCase) -> str:
    parcels = "；".join(
        f"{LAND_LABELS.get(p.land_class, p.land_class)} {_text(p.area_mu)} 亩" for p in case.parcels
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
        ("处罚决定", f"{case.decision_no}（{_text(case.decided_on)}）"),
        ("罚款（元）", case.fine_yuan),
        ("处罚内容", case.penalty_summary),
        ("整改", actions),
        ("复耕验收", case.restoration_verified_on or "尚未验收"),
        ("办理状态", STATUS_LABELS.get(case.status, case.status)),
    ]
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in facts)
    return f'<article class="case"><h2>{_e(case.case_id)}</h2><dl>{items}</dl></article>'


def notice_html(report: NoticeReport) -> str:
    title = "违法占用耕地典型案件通报"
    meta = [f"案件选择 Selection: {report.selection}", f"生成时间: {_text(report.generated_at)}"]
    body = [_notice_article(case) for case in report.cases] or [
        _empty("无符合条件的案件 (no publishable case in this selection).")
    ]
    notes = [
        "依 seed §四(六) 加大对违法占用耕地典型案件的曝光力度。",
        "自然人姓名仅保留姓氏，证件号码仅保留前四位与后两位；被法院撤销的案件不予通报。",
    ]
    return _page(title, meta, body, notes)


def to_html(report: Report) -> str:
    if isinstance(report, TownshipReport):
        return township_html(report)
    if isinstance(report, DepartmentReport):
        return departments_html(report)
    if isinstance(report, RankingReport):
        return ranking_html(report)
    return notice_html(report)
