"""`GET /v1/reports/...`: the same reports as `redline report`, as JSON, CSV or HTML.

Refused input raises InvalidInput (services.errors), so the app's handler answers 422 with
`{"error", "errors": [{"field", "reason"}]}` like every other endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from services.bootstrap import build_reports, load_ranking_rule, utc_now
from services.config import Settings
from services.reports.department import DepartmentReport
from services.reports.handlers import Reports
from services.reports.kinds import Report
from services.reports.notice import NoticeReport
from services.reports.ranking import RankingReport
from services.reports.render import to_csv, to_html
from services.reports.township import DEFAULT_OPEN_BOUND_DAYS, MAX_OPEN_BOUND_DAYS, TownshipReport

Format = Literal["json", "csv", "html"]
OutputFormat = Annotated[
    Format, Query(alias="format", description="json (default), csv or html (with charts).")
]

_FILES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}, "text/html": {}}, "description": "The report."}
}


def respond(report: Report, output: Format) -> Response:
    """The report in the asked format; CSV comes as a download named like the CLI's file."""
    if output == "csv":
        return Response(
            to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{report.slug}.csv"'},
        )
    if output == "html":
        return HTMLResponse(to_html(report))
    return JSONResponse(report.model_dump(mode="json"))


def report_router(settings: Settings, clock: Callable[[], datetime] = utc_now) -> APIRouter:
    """The report endpoints; each report reads one snapshot over its own connection."""
    router = APIRouter(prefix="/v1/reports", tags=["reports"])
    built: list[Reports] = []
    # Now: a wrong city rule stops the start, naming the key.
    rule = load_ranking_rule(settings.city_config)

    def reports() -> Reports:
        """Built on first use, so an app made without a database still starts."""
        if not built:
            built.append(build_reports(settings, clock, rule))
        return built[0]

    _add_periodic_reports(router, reports)
    _add_public_reports(router, reports)
    return router


def _add_periodic_reports(router: APIRouter, reports: Callable[[], Reports]) -> None:
    """The quarter's township report and the departments' response record."""

    @router.get("/township", response_model=TownshipReport, responses=_FILES)
    async def township_report(
        quarter: Annotated[str, Query(description="The quarter, e.g. 2026Q3.")],
        township: Annotated[str | None, Query(description="One township code only.")] = None,
        older_than_days: Annotated[
            int,
            Query(ge=0, le=MAX_OPEN_BOUND_DAYS, description="Open cases older than this."),
        ] = DEFAULT_OPEN_BOUND_DAYS,
        output: OutputFormat = "json",
    ) -> Response:
        """Quarterly township report (每季度书面汇报), with the responsibility targets each
        township entered for the quarter and its warning talks and rectification deadlines."""
        report = await reports().township(
            quarter=quarter, township=township, older_than_days=older_than_days
        )
        return respond(report, output)

    @router.get("/departments", response_model=DepartmentReport, responses=_FILES)
    async def department_record(
        period: Annotated[
            str, Query(description="2026, 2026Q3 or 2026-07-01..2026-09-30 (days included).")
        ],
        department: Annotated[str | None, Query(description="One department code only.")] = None,
        output: OutputFormat = "json",
    ) -> Response:
        """Department response record (共同责任), for the Organisation Department."""
        report = await reports().departments_record(period=period, department=department)
        return respond(report, output)


def _add_public_reports(router: APIRouter, reports: Callable[[], Reports]) -> None:
    """The annual satellite ranking and the public notice of typical cases."""

    @router.get("/ranking", response_model=RankingReport, responses=_FILES)
    async def satellite_ranking(
        year: Annotated[str, Query(description="The enforcement year, e.g. 2026.")],
        output: OutputFormat = "json",
    ) -> Response:
        """Annual satellite-enforcement ranking of townships (§四(五)); townships are flagged
        by the city's ranking rule (REDLINE_CITY_CONFIG, `ranking:`), which the report names."""
        return respond(await reports().ranking(year=year), output)

    @router.get("/notice", response_model=NoticeReport, responses=_FILES)
    async def public_notice(
        case: Annotated[
            list[str] | None, Query(description="A case to publish; repeat for more.")
        ] = None,
        since: Annotated[
            str | None, Query(description="Every publishable case decided or closed since.")
        ] = None,
        output: OutputFormat = "json",
    ) -> Response:
        """Public notice of typical cases (§四(六)), personal data masked."""
        return respond(await reports().notice(cases=case or [], since=since), output)
