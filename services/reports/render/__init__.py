"""Reports as files: CSV for spreadsheets and HTML (with inline SVG charts) for people.

Each report has its module here (`township`, `department`, `ranking`, `notice`); all of
them lay their page out with `page.page_html` and write CSV with `page.csv_text`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from services.reports.department import DepartmentReport
from services.reports.kinds import Report
from services.reports.notice import NoticeReport
from services.reports.ranking import RankingReport
from services.reports.render.department import departments_csv, departments_html
from services.reports.render.notice import notice_csv, notice_html
from services.reports.render.ranking import ranking_csv, ranking_html
from services.reports.render.township import township_csv, township_html
from services.reports.township import TownshipReport

R = TypeVar("R")


@dataclass(frozen=True)
class _Formats(Generic[R]):
    csv: Callable[[R], str]
    html: Callable[[R], str]


_FORMATS: dict[type[Report], _Formats[Any]] = {
    TownshipReport: _Formats(township_csv, township_html),
    DepartmentReport: _Formats(departments_csv, departments_html),
    RankingReport: _Formats(ranking_csv, ranking_html),
    NoticeReport: _Formats(notice_csv, notice_html),
}


def to_csv(report: Report) -> str:
    return _FORMATS[type(report)].csv(report)


def to_html(report: Report) -> str:
    return _FORMATS[type(report)].html(report)
