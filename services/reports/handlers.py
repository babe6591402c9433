"""The reports service behind both the CLI and the HTTP API: check the request, read one
snapshot, aggregate. Input is refused (InvalidInput) before anything is read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import date

from services.city_time import CityClock
from services.errors import InvalidInput
from services.reports.common import Heading
from services.reports.department import DepartmentReport, department_report
from services.reports.notice import NoticeReport, notice_refusal, public_notice
from services.reports.periods import (
    check_known,
    parse_day,
    parse_period,
    parse_quarter,
    parse_year,
)
from services.reports.ports import ReportStore
from services.reports.ranking import RankingReport, RankingRule, satellite_ranking
from services.reports.township import (
    DEFAULT_OPEN_BOUND_DAYS,
    MAX_OPEN_BOUND_DAYS,
    TownshipReport,
    TownshipRows,
    township_report,
)

MAX_NOTICE_CASES = 200


@dataclass(eq=False)
class Reports(CityClock):
    store: ReportStore
    _: KW_ONLY
    townships: Mapping[str, str]
    departments: Mapping[str, str]
    ranking_rule: RankingRule = field(default_factory=RankingRule)

    async def township(
        self,
        *,
        quarter: str,
        township: str | None = None,
        older_than_days: int = DEFAULT_OPEN_BOUND_DAYS,
    ) -> TownshipReport:
        """每季度书面汇报: one quarter, every township (or one)."""
        now = self.clock()
        period = parse_quarter(quarter, self.today(now))
        check_known("township", township, self.townships, "township")
        if not 0 <= older_than_days <= MAX_OPEN_BOUND_DAYS:
            raise InvalidInput(
                "older_than_days",
                f"must be 0 to {MAX_OPEN_BOUND_DAYS} days, got {older_than_days}",
            )
        window = period.window(self.timezone)
        heading = Heading(
            period, window, self.timezone.key, as_of=min(window.end, now), generated_at=now
        )
        async with self.store.snapshot() as reads:
            departments = await reads.department_tables(list(self.departments))
            rows = TownshipRows(
                clues=await reads.clues(window, township),
                filed=await reads.filed_cases(window, township),
                accountability=await reads.accountability(window, township),
                blocks=await reads.blocks(window, township, departments),
                restorations=await reads.restorations(window, township),
                open_cases=await reads.open_cases(heading.as_of, township),
                targets=await reads.township_targets(period.label, township),
                talks=await reads.township_talks(window, township),
            )
        return township_report(
            heading,
            township=township,
            older_than_days=older_than_days,
            names=self.townships,
            departments_read=departments,
            rows=rows,
        )

    async def departments_record(
        self, *, period: str, department: str | None = None
    ) -> DepartmentReport:
        """共同责任: how each department answered what it was asked in the period."""
        now = self.clock()
        parsed = parse_period(period, self.today(now))
        check_known("department", department, self.departments, "department")
        window = parsed.window(self.timezone)
        async with self.store.snapshot() as reads:
            rows = await reads.responses(window, department)
        heading = Heading(parsed, window, self.timezone.key, as_of=now, generated_at=now)
        return department_report(heading, department=department, names=self.departments, rows=rows)

    async def ranking(self, *, year: str) -> RankingReport:
        """§四(五): the year's satellite-enforcement findings, township by township."""
        now = self.clock()
        period = parse_year(year, self.today(now))
        async with self.store.snapshot() as reads:
            rows = await reads.satellite_cases(period.first_day, period.last_day)
        return satellite_ranking(
            period=period,
            generated_at=now,
            names=self.townships,
            rows=rows,
            rule=self.ranking_rule,
        )

    async def notice(self, *, cases: Sequence[str] = (), since: str | None = None) -> NoticeReport:
        """§四(六): typical cases ready to publish, personal data masked.

        Named cases must each be publishable (else the request is refused, naming the case);
        `since` takes every publishable case decided or closed on or after that day."""
        now = self.clock()
        chosen = list(dict.fromkeys(case.strip() for case in cases if case.strip()))
        if bool(chosen) == (since is not None):
            raise InvalidInput("case", "give either case ids or since, not both nor neither")
        if len(chosen) > MAX_NOTICE_CASES:
            raise InvalidInput("case", f"at most {MAX_NOTICE_CASES} cases in one notice")
        day: date | None = None
        if since is not None:
            day = parse_day(since, "since")
            if day > self.today(now):
                raise InvalidInput("since", f"{day} is in the future")
        async with self.store.snapshot() as reads:
            ids = chosen if day is None else await reads.decided_or_closed_since(day)
            rows = await reads.notice_cases(ids)
        if chosen:
            found = {row.case_id: row for row in rows}
            for case_id in chosen:
                if case_id not in found:
                    raise InvalidInput("case", f"no case {case_id!r}")
                refusal = notice_refusal(found[case_id].records)
                if refusal is not None:
                    raise InvalidInput("case", f"{case_id} cannot be published: {refusal}")
        selection = ", ".join(chosen) if chosen else f"since {day}"
        return public_notice(
            selection=selection, generated_at=now, names=self.townships, rows=rows, since=day
        )
