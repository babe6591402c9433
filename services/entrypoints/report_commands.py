"""`redline report ...`: responsibility reports written as CSV and HTML into a directory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from services.bootstrap import build_reports
from services.config import load_running_settings
from services.errors import InvalidInput
from services.reports.handlers import Reports
from services.reports.kinds import Report
from services.reports.notice import NoticeReport
from services.reports.render import to_csv, to_html
from services.reports.township import DEFAULT_OPEN_BOUND_DAYS

report_app = typer.Typer(
    help="Responsibility reports (seed §四): township quarters, departments, ranking, notices."
)

OutDir = Annotated[
    Path,
    typer.Option(
        "--out", help="Directory for the CSV and HTML files (created if missing).", file_okay=False
    ),
]


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _produce(work: Callable[[Reports], Coroutine[Any, Any, Report]]) -> Report:
    """Run the report; refused input exits 2 naming the option, like every redline command."""

    try:
        return asyncio.run(work(build_reports(load_running_settings())))
    except InvalidInput as exc:
        typer.echo(f"error: invalid input: {_option(exc.field)}: {exc.reason}", err=True)
        raise typer.Exit(2) from exc


def write_report(report: Report, out: Path) -> list[Path]:
    """Write `<slug>.csv` and `<slug>.html` into `out`; the same bytes the HTTP API serves."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{report.slug}.csv"
    html_path = out / f"{report.slug}.html"
    csv_path.write_text(to_csv(report), encoding="utf-8", newline="")
    html_path.write_text(to_html(report), encoding="utf-8")
    return [csv_path, html_path]


def _emit(report: Report, out: Path) -> None:
    """The written paths on stdout, one a line, for scripts; a count on stderr for people."""
    for path in write_report(report, out):
        typer.echo(str(path))
    rows = len(report.cases) if isinstance(report, NoticeReport) else len(report.rows)
    typer.echo(f"{report.kind} {report.slug}: {rows} row(s)", err=True)


@report_app.command("township")
def township(
    quarter: Annotated[str, typer.Option(help="The quarter, e.g. 2026Q3.")],
    out: OutDir,
    township: Annotated[str | None, typer.Option(help="One township code only.")] = None,
    older_than_days: Annotated[
        int, typer.Option(min=0, help="Count open cases filed more than this many days ago.")
    ] = DEFAULT_OPEN_BOUND_DAYS,
) -> None:
    """Quarterly township report (每季度书面汇报): clues, cases, areas, measures, restorations."""
    report = _produce(
        lambda reports: reports.township(
            quarter=quarter, township=township, older_than_days=older_than_days
        )
    )
    _emit(report, out)


@report_app.command("departments")
def departments(
    period: Annotated[
        str, typer.Option(help="2026, 2026Q3 or 2026-07-01..2026-09-30 (both days included).")
    ],
    out: OutDir,
    department: Annotated[str | None, typer.Option(help="One department code only.")] = None,
) -> None:
    """Department response record (共同责任): required, on time, late, never answered."""
    report = _produce(
        lambda reports: reports.departments_record(period=period, department=department)
    )
    _emit(report, out)


@report_app.command("ranking")
def ranking(
    year: Annotated[str, typer.Option(help="The enforcement year, e.g. 2026.")],
    out: OutDir,
) -> None:
    """Annual satellite-enforcement ranking of townships (§四(五)), large ones flagged."""
    report = _produce(lambda reports: reports.ranking(year=year))
    _emit(report, out)


@report_app.command("notice")
def notice(
    out: OutDir,
    case: Annotated[
        list[str] | None, typer.Option("--case", help="A case to publish; repeat for more.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Every publishable case decided or closed since this day.")
    ] = None,
) -> None:
    """Public notice of typical cases (§四(六)), names and ID numbers masked."""
    report = _produce(lambda reports: reports.notice(cases=case or [], since=since))
    _emit(report, out)
