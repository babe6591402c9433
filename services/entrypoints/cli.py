"""`redline`: the command line over the same service layer the HTTP API uses."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from events.catalogue import load_catalogue
from events.errors import CatalogueError, invalid_from_validation
from events.logmask import mask_logging
from events.models import CaseDetails, ClueDetails
from services.access import Principal, TokenStore
from services.adapters.kafka import ensure_topics
from services.adapters.migrate import migrate as apply_migrations
from services.bootstrap import bootstrap_registry, department_queries, registry_store
from services.config import load_running_settings
from services.departments.queries import BlockList, BlockView
from services.entrypoints.audit_commands import audit_app
from services.entrypoints.report_commands import report_app
from services.errors import InvalidInput, RedlineError
from services.registry.domain import CaseStatus, Step
from services.registry.handlers import STEP_EVENTS, Registry, SignOffDetails

app = typer.Typer(help="Redline: the joint-punishment bus for farmland protection.")
case_app = typer.Typer(help="Case officers: file cases and record their steps.")
clue_app = typer.Typer(help="Report clues.")
outbox_app = typer.Typer(help="The registry's outbox of events to publish.")
app.add_typer(case_app, name="case")
app.add_typer(clue_app, name="clue")
app.add_typer(outbox_app, name="outbox")
department_app = typer.Typer(help="Departments: run an enforcer, list measures, query blocks.")
app.add_typer(department_app, name="department")
app.add_typer(report_app, name="report")
app.add_typer(audit_app, name="audit")

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

JsonInput = Annotated[
    str,
    typer.Argument(help="The request as JSON (the HTTP API's body), or @FILE, or - for stdin."),
]


def _read_json(source: str) -> Any:
    if source == "-":
        text = sys.stdin.read()
    elif source.startswith("@"):
        text = Path(source[1:]).read_text(encoding="utf-8")
    else:
        text = source
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidInput("body", f"not JSON: {exc}") from exc


def _parse(model: type[M], source: str) -> M:
    try:
        return model.model_validate(_read_json(source))
    except ValidationError as exc:
        invalid = invalid_from_validation(exc, prefix="")
        raise InvalidInput(invalid.field, invalid.reason) from exc


def _with_registry(work: Callable[[Registry], Awaitable[T]]) -> T:
    async def run() -> T:
        async with bootstrap_registry(load_running_settings()) as registry:
            return await work(registry)

    return asyncio.run(run())


def _print(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


@clue_app.command("report")
def report_clue(body: JsonInput, idempotency_key: str | None = None) -> None:
    """Report a clue: {"source", "township", "location", "description", "reported_on"}."""
    details = _parse(ClueDetails, body)
    _print(_with_registry(lambda registry: registry.report_clue(details, idempotency_key)))


@case_app.command("file")
def file_case(body: JsonInput, idempotency_key: str | None = None) -> None:
    """File a case (立案): the JSON body of POST /v1/cases."""
    details = _parse(CaseDetails, body)
    _print(_with_registry(lambda registry: registry.file_case(details, idempotency_key)))


@case_app.command("record")
def record_step(
    case_id: str, step: Step, body: JsonInput, idempotency_key: str | None = None
) -> None:
    """Record a step on a case (the body of POST /v1/cases/{case_id}/{step}; the step
    land_procedures is POST .../land-procedures): penalty, rectification, revocation,
    closure, correction, land_procedures (lawful land procedures obtained) or
    confiscation (没收到位, which ends the case)."""
    if step not in STEP_EVENTS:
        raise InvalidInput("step", f"{step} needs both bodies' sign-offs: `redline case sign-off`")
    details = _parse(STEP_EVENTS[step][0], body)
    _print(
        _with_registry(
            lambda registry: registry.record_step(case_id, step, details, idempotency_key)
        )
    )


@case_app.command("sign-off")
def sign_off_restoration(
    case_id: str,
    body: JsonInput,
    token_file: Annotated[
        Path,
        typer.Option(
            help="The signer's API token, e.g. .redline/tokens/agriculture-inspector.token"
        ),
    ],
    idempotency_key: str | None = None,
) -> None:
    """Sign off a restoration (复耕验收) as the token's holder: {"verified_on"}. A case
    officer signs for natural resources, an agriculture inspector for agriculture; the
    second body's sign-off restores the case."""
    details = _parse(SignOffDetails, body)
    signer = _principal(token_file)
    _print(
        _with_registry(
            lambda registry: registry.sign_off_restoration(
                case_id, signer, details, idempotency_key
            )
        )
    )


def _principal(token_file: Path) -> Principal:
    """Who signs: the holder of a token the API knows, as over HTTP."""
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InvalidInput("--token-file", f"cannot read {token_file}: {exc}") from exc
    found = TokenStore.load(load_running_settings().api_tokens).principal(token)
    if found is None:
        raise InvalidInput("--token-file", f"the token in {token_file} is not known")
    return found


@case_app.command("show")
def show_case(case_id: str) -> None:
    """A case with every recorded step."""
    _print(_with_registry(lambda registry: registry.get_case(case_id)))


@case_app.command("list")
def list_cases(
    township: str | None = None,
    status: CaseStatus | None = None,
    after: str | None = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Cases by township and status, in case-id order, a page at a time."""
    _print(
        _with_registry(
            lambda registry: registry.list_cases(
                township=township, status=status, after=after, limit=limit
            )
        )
    )


@outbox_app.command("replay")
def replay(
    from_: Annotated[
        str, typer.Option("--from", help="An outbox position (integer) or an ISO 8601 time.")
    ],
) -> None:
    """Publish again every event from a position or time on (for a new department or a
    broker that lost its data); consumers dedup on the event id, so nothing doubles."""
    position: int | None = None
    since: datetime | None = None
    if from_.isdigit():
        position = int(from_)
    else:
        try:
            since = datetime.fromisoformat(from_)
        except ValueError as exc:
            raise InvalidInput(
                "--from", f"{from_!r} is neither a position nor an ISO time"
            ) from exc
        if since.tzinfo is None:
            raise InvalidInput("--from", "the time needs a UTC offset, e.g. 2026-11-01T00:00+08:00")

    async def run() -> int:
        async with registry_store(load_running_settings()) as store:
            return await store.outbox.replay_from(position=position, since=since)

    typer.echo(f"{asyncio.run(run())} events queued for publication again")


@department_app.command("run")
def run_department(code: str) -> None:
    """Run one department's enforcer (its own consumer group and schema) until stopped."""
    # faust is imported only by the command that needs it: it takes a second to load.
    from services.entrypoints.department import main as run  # noqa: PLC0415

    run([code])


@department_app.command("host")
def host_departments(
    codes: Annotated[
        list[str] | None, typer.Argument(help="Department codes; none: every department.")
    ] = None,
) -> None:
    """Run many departments' enforcers in one process (none named: every department), each
    in its own consumer group, schema, role and key; `make run` runs them this way."""
    from services.entrypoints.department_host import main as run  # noqa: PLC0415

    run(list(codes or []))


@department_app.command("list")
def list_departments() -> None:
    """Every department in the measures catalogue, with its measures."""
    for department in load_catalogue().departments:
        measures = ", ".join(
            f"{m.code} (from {m.starts_at}, {m.response_deadline_hours} h)"
            for m in department.measures
        )
        typer.echo(f"{department.code:<20} {department.name_zh}: {measures}")


@department_app.command("blocks")
def department_blocks(
    code: str,
    subject: Annotated[str | None, typer.Option(help="Only this subject's blocks.")] = None,
    site: Annotated[
        str | None,
        typer.Option(
            help="Only blocks held against this site: unit code, parcel code or location."
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Only blocks held against this project (its code).")
    ] = None,
    include_lifted: Annotated[bool, typer.Option(help="Show lifted blocks too.")] = False,
) -> None:
    """A department's blocks: measure, case, what it is held against and why, since when."""
    load_catalogue().department(code)

    async def run() -> list[BlockView]:
        settings = load_running_settings()
        async with department_queries(settings) as queries:
            return await queries.blocks(
                code,
                subject_id=subject,
                active_only=not include_lifted,
                site=site,
                project=project,
            )

    typer.echo(BlockList(blocks=asyncio.run(run())).model_dump_json(indent=2))


@app.command()
def demo(
    cases: Annotated[int | None, typer.Option(help="How many; unset runs until stopped.")] = None,
    interval: Annotated[float, typer.Option(min=0)] = 1.0,
    seed: int = 2023,
) -> None:
    """File a stream of realistic sample cases, some over the thresholds, some later restored
    (from a source checkout: a production install carries no demo)."""
    try:
        # The demo is a top-level package of the checkout, left out of the wheel and image.
        from demo import DemoStats, run_demo  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name != "demo":
            raise
        raise RedlineError(
            "the demo is not part of this install: it runs from a source checkout "
            "(`make run` starts it; or `python -m services.entrypoints.cli demo` from the "
            "checkout's root)"
        ) from exc

    async def run() -> DemoStats:
        async with bootstrap_registry(load_running_settings()) as registry:
            return await run_demo(registry, cases=cases, interval=interval, seed=seed)

    stats = asyncio.run(run())
    typer.echo(f"demo done: {stats}")


@app.command()
def migrate() -> None:
    """Apply pending database migrations (safe to run twice, or from two places at once)."""
    _, database = load_running_settings().require()
    applied = asyncio.run(apply_migrations(database))
    typer.echo("applied: " + (", ".join(applied) if applied else "nothing, already up to date"))


@app.command()
def topics() -> None:
    """Create any missing Redline topic with its settings."""
    settings = load_running_settings()
    kafka, _ = settings.require()
    created = asyncio.run(
        ensure_topics(
            kafka,
            replication_factor=settings.kafka_replication_factor,
            auth=settings.kafka_auth,
        )
    )
    typer.echo("created: " + (", ".join(created) if created else "nothing, all exist"))


def main() -> None:
    mask_logging()
    try:
        app()
    except InvalidInput as exc:
        typer.echo(f"error: invalid input: {exc}", err=True)
        raise SystemExit(2) from exc
    except (RedlineError, CatalogueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc


if __name__ == "__main__":
    main()
