"""The four reports as one type, for what serves or writes any of them (API, CLI, render)."""

from __future__ import annotations

from services.reports.department import DepartmentReport
from services.reports.notice import NoticeReport
from services.reports.ranking import RankingReport
from services.reports.township import TownshipReport

Report = TownshipReport | DepartmentReport | RankingReport | NoticeReport
