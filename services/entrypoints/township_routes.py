"""Township accountability over HTTP (seed §四(三), §四(五)): warning talks, praise and
criticism, the one-vote veto, the quarterly responsibility-target report, and the
organisation department's annual assessment. Who may call what is services/access.py's
POLICY; a township's own-township rule is checked there and again in the handlers.

The commands are made from the tables below (as the case steps are from STEP_EVENTS), each
calling its service method with the path's values, its body, the caller and the key."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.access import Principal
from services.bootstrap import build_townships, utc_now
from services.config import Settings
from services.entrypoints.request_parts import IdempotencyKey
from services.townships.domain import (
    Assessment,
    NotFound,
    NoticeDetails,
    NoticeView,
    NotYours,
    QuarterFigures,
    RectificationReport,
    StateError,
    TalkDecision,
    TalkRequest,
    TalkView,
    VetoDetails,
    VetoView,
)
from services.townships.handlers import QuarterView, Townships

T = TypeVar("T")
Service = Callable[[Request], Townships]  # the service a request is answered by

_ANSWERS: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not this token's role or body, or another township's record."},
    404: {"description": "No such talk or report."},
    409: {"description": "The record's state does not allow this (both named)."},
}
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotYours, 403),
    (NotFound, 404),
    (StateError, 409),
)


@dataclass(frozen=True)
class Command:
    """A route that changes a township record: `act` is the service method, called with the
    path's values in order, then the body (when `body` names its model), the caller and the
    Idempotency-Key. Its name is the route's (OpenAPI operationId and summary)."""

    method: str
    path: str
    act: Callable[..., Awaitable[BaseModel]]
    body: type[BaseModel] | None
    answer: type[BaseModel]
    description: str
    status_code: int = 200


TALK_COMMANDS = (
    Command(
        "POST",
        "/v1/talks",
        Townships.request_talk,
        TalkRequest,
        TalkView,
        "Natural resources asks the city government for a warning talk (警示约谈) with a\n"
        "township, giving the reason and the cases it cites.",
        status_code=201,
    ),
    Command(
        "POST",
        "/v1/talks/{talk_id}/decision",
        Townships.decide_talk,
        TalkDecision,
        TalkView,
        "The city government approves (talk date, rectification deadline 限时整改) or\n"
        "declines (reason).",
    ),
    Command(
        "POST",
        "/v1/townships/{township}/talks/{talk_id}/rectification",
        Townships.report_rectification,
        RectificationReport,
        TalkView,
        "The township reports its rectification done; past the deadline it shows late.",
    ),
)
RECORD_COMMANDS = (
    Command(
        "POST",
        "/v1/townships/{township}/notices",
        Townships.record_notice,
        NoticeDetails,
        NoticeView,
        "通报表扬 / 通报批评 of a township for a year, recorded by the city government.",
        status_code=201,
    ),
    Command(
        "POST",
        "/v1/townships/{township}/vetoes",
        Townships.record_veto,
        VetoDetails,
        VetoView,
        "一票否决 in the township's annual assessment; one per township and year.",
        status_code=201,
    ),
    Command(
        "PUT",
        "/v1/townships/{township}/reports/{quarter}",
        Townships.enter_report,
        QuarterFigures,
        QuarterView,
        "The township enters (or corrects, until submitted) its quarter's responsibility\n"
        "targets and findings; the answer sets the bus's figures beside them.",
    ),
    Command(
        "POST",
        "/v1/townships/{township}/reports/{quarter}/submission",
        Townships.submit_report,
        None,
        QuarterView,
        "每季度向市政府书面汇报: the township submits; the report no longer changes.",
    ),
    Command(
        "POST",
        "/v1/townships/{township}/reports/{quarter}/receipt",
        Townships.receive_report,
        None,
        QuarterView,
        "The city government marks a submitted report received.",
    ),
)


async def _answered(call: Awaitable[T]) -> T | JSONResponse:
    """The domain's refusals in the API's error shape ({"error", "errors"})."""
    try:
        return await call
    except (NotYours, NotFound, StateError) as exc:
        status = next(code for kind, code in _STATUS if isinstance(exc, kind))
        errors = [{"field": "Authorization", "reason": str(exc)}] if status == 403 else []
        return JSONResponse(status_code=status, content={"error": str(exc), "errors": errors})


def township_router(settings: Settings, clock: Callable[[], datetime] = utc_now) -> APIRouter:
    """The routes; the service is `app.state.townships` when a test sets one, else built on
    first use over the settings' database (an app without a database still starts)."""
    router = APIRouter(tags=["townships"])
    built: list[Townships] = []

    def service(request: Request) -> Townships:
        given: Townships | None = getattr(request.app.state, "townships", None)
        if given is not None:
            return given
        if not built:
            built.append(build_townships(settings, clock))
        return built[0]

    _add_commands(router, service, TALK_COMMANDS)
    _add_talk_lists(router, service)
    _add_commands(router, service, RECORD_COMMANDS)
    _add_views(router, service)
    return router


def _caller(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def _add_commands(router: APIRouter, service: Service, commands: tuple[Command, ...]) -> None:
    for command in commands:
        router.add_api_route(
            command.path,
            _endpoint(command, service),
            methods=[command.method],
            name=command.act.__name__,
            description=command.description,
            status_code=command.status_code,
            response_model=command.answer,
            responses=_ANSWERS,
        )


def _endpoint(command: Command, service: Service) -> Callable[..., Awaitable[Any]]:
    """The command's endpoint. FastAPI reads the path parameters, the body model and the
    Idempotency-Key header from the signature made here, as from one written out."""
    names = re.findall(r"{(\w+)}", command.path)

    async def endpoint(request: Request, **given: Any) -> Any:
        values = [given[name] for name in names]
        if command.body is not None:
            values.append(given["details"])
        act = command.act(service(request), *values, _caller(request), given["key"])
        return await _answered(act)

    keyword = inspect.Parameter.KEYWORD_ONLY
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
            ),
            *(inspect.Parameter(name, keyword, annotation=str) for name in names),
            *(
                [inspect.Parameter("details", keyword, annotation=command.body)]
                if command.body is not None
                else []
            ),
            inspect.Parameter("key", keyword, annotation=IdempotencyKey, default=None),
        ]
    )
    return endpoint


def _add_talk_lists(router: APIRouter, service: Service) -> None:
    """Warning talks (警示约谈) as they stand: all of a year's, or one township's."""

    @router.get("/v1/talks", response_model=list[TalkView])
    async def list_talks(
        request: Request,
        year: Annotated[str, Query(description="Talks requested or due in this year.")],
        township: Annotated[str | None, Query(description="One township only.")] = None,
    ) -> list[TalkView]:
        return await service(request).talks(township=township, year=year)

    @router.get("/v1/townships/{township}/talks", response_model=list[TalkView])
    async def township_talks(
        request: Request,
        township: str,
        year: Annotated[str, Query(description="Talks requested or due in this year.")],
    ) -> list[TalkView]:
        return await service(request).talks(township=township, year=year)


def _add_views(router: APIRouter, service: Service) -> None:
    """The quarter's report checked against the bus, and the annual assessment."""

    @router.get(
        "/v1/townships/{township}/reports/{quarter}",
        response_model=QuarterView,
        responses=_ANSWERS,
    )
    async def quarter_report(
        request: Request, township: str, quarter: str
    ) -> QuarterView | JSONResponse:
        """The entered figures (or `missing`), the bus's beside them, and every unmet
        target, discrepancy and figure to verify, named."""
        return await _answered(service(request).quarter_report(township, quarter, _caller(request)))

    @router.get("/v1/assessments/{year}", response_model=Assessment)
    async def annual_assessment(request: Request, year: str) -> Assessment:
        """The organisation department's view (组织部, seed §四(三)): per township, talks and
        rectifications, praise and criticism, veto, quarterly reports and target checks."""
        return await service(request).assessment(year)
