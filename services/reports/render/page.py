"""The one page every report is laid out in, and the table and CSV writers they share.

Every piece of text that reaches HTML goes through `escaped` (html.escape), attributes too;
CSV cells that a spreadsheet would run as a formula are quoted as text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from html import escape
from typing import Any

from services.reports.common import PeriodReport

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
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text(value: object) -> str:
    """How a value reads on the page and in a CSV cell: days and instants in ISO form."""
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


def escaped(value: object) -> str:
    return escape(text(value), quote=True)


# --- the page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A heading and what follows it (charts, tables, lists), already HTML; a section
    with no heading is a message such as "nothing in this period"."""

    heading: str
    parts: Sequence[str] = ()


@dataclass(frozen=True)
class Page:
    """What one report says; `page_html` lays every report out the same way."""

    title: str
    meta: Sequence[str]
    generated_at: datetime
    sections: Sequence[Section]
    notes: Sequence[str] = field(default=())


def period_line(first_day: date, last_day: date, timezone: str) -> str:
    return f"期间 Period: {first_day} 至 {last_day}（{timezone}）"


def period_page(
    report: PeriodReport,
    title: str,
    scope: str,
    sections: Sequence[Section],
    notes: Sequence[str],
) -> str:
    """A report over a period of days: its title with the period's label, the period's
    days, and `scope` (what it covers, and when its open figures are counted)."""
    period = period_line(report.first_day, report.last_day, report.timezone)
    return page_html(
        Page(
            title=f"{title} {report.period}",
            meta=[period, scope],
            generated_at=report.generated_at,
            sections=sections,
            notes=notes,
        )
    )


def nothing(message: str) -> Section:
    """The section of a report with no rows."""
    return Section("", [f"<p><strong>{escaped(message)}</strong></p>"])


def page_html(page: Page) -> str:
    """A whole document: inline style and charts only, so it renders with nothing fetched."""
    meta = [*page.meta, f"生成时间 Generated: {text(page.generated_at)}"]
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_POLICY}">',
            f"<title>{escaped(page.title)}</title><style>{_STYLE}</style></head><body>",
            f"<header><h1>{escaped(page.title)}</h1>",
            *(f'<p class="meta">{escaped(line)}</p>' for line in meta),
            "</header><main>",
            *(_section(section) for section in page.sections),
            "</main><footer>",
            *(f"<p>{escaped(note)}</p>" for note in page.notes),
            "</footer></body></html>\n",
        ]
    )


def _section(section: Section) -> str:
    heading = f"<h2>{escaped(section.heading)}</h2>" if section.heading else ""
    return f"<section>{heading}{''.join(section.parts)}</section>"


def table(
    header: Sequence[str], rows: Sequence[Sequence[object]], classes: Sequence[str] = ()
) -> str:
    """A table; numbers are right-aligned, and row i gets the CSS class `classes[i]`."""
    head = "".join(f"<th>{escaped(name)}</th>" for name in header)
    lines = []
    for index, row in enumerate(rows):
        css = classes[index] if index < len(classes) and classes[index] else ""
        cells = "".join(
            f'<td class="n">{escaped(value)}</td>'
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool)
            else f"<td>{escaped(value)}</td>"
            for value in row
        )
        lines.append(f'<tr class="{escaped(css)}">{cells}</tr>' if css else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def marked(rows: Sequence[object], css: str, when: Callable[[Any], bool]) -> list[str]:
    """The CSS class of each row: `css` where `when(row)`, else none."""
    return [css if when(row) else "" for row in rows]


# --- CSV ------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    written = text(value)
    numeric = isinstance(value, int | float | Decimal)
    return "'" + written if not numeric and written.startswith(_FORMULA_START) else written


def csv_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """UTF-8 with a byte-order mark, so a spreadsheet shows the Chinese names correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return "\ufeff" + out.getvalue()


def csv_text(columns: Sequence[str], rows: Sequence[object], **report: object) -> str:
    """One line a row, one cell a column. A column is named like the row's attribute, or
    `header=attribute`, or like a keyword argument: the report's value on every line.
    A list is written as one cell, its items joined by ";"."""
    header = [column.partition("=")[0] for column in columns]

    def value(row: object, column: str) -> object:
        name, _, attribute = column.partition("=")
        found = report[name] if name in report else getattr(row, attribute or name)
        return ";".join(map(text, found)) if isinstance(found, list) else found

    return csv_table(header, ([value(row, column) for column in columns] for row in rows))
