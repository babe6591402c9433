"""Township accountability over HTTP (seed §四(三), §四(五)): warning talks, praise and
criticism, the one-vote veto, the quarterly responsibility-target report, and the
organisation department's annual assessment. Who may call what is services/access.py's
POLICY; a township's own-township rule is checked there and again in the handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from services.access import Principal
from services.bootstrap import build_townships, utc_now
from services.config import Settings
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

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A retried call with this key returns the first answer, writes nothing new.",
    ),
]
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

    _add_talk_routes(router, service)
    _add_record_routes(router, service)
    _add_report_routes(router, service)
    _add_views(router, service)
    return router


def _caller(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def _add_talk_routes(router: APIRouter, service: Service) -> None:
    """Warning talks (警示约谈): requested, decided, listed, rectified."""

    @router.post("/v1/talks", status_code=201, response_model=TalkView, responses=_ANSWERS)
    async def request_talk(
        request: Request, details: TalkRequest, key: IdempotencyKey = None
    ) -> TalkView | JSONResponse:
        """Natural resources asks the city government for a warning talk (警示约谈) with a
        township, giving the reason and the cases it cites."""
        return await _answered(service(request).request_talk(details, _caller(request), key))

    @router.post("/v1/talks/{talk_id}/decision", response_model=TalkView, responses=_ANSWERS)
    async def decide_talk(
        request: Request, talk_id: str, decision: TalkDecision, key: IdempotencyKey = None
    ) -> TalkView | JSONResponse:
        """The city government approves (talk date, rectification deadline 限时整改) or
        declines (reason)."""
        return await _answered(
            service(request).decide_talk(talk_id, decision, _caller(request), key)
        )

    @router.get("/v1/talks", response_model=list[TalkView])
    async def list_talks(
        request: Request,
        year: Annotated[str, Query(description="Talks requested or due in this year.")],
        township: Annotated[str | None, Query(description="One township only.")] = None,
    ) -> list[TalkView]:
        return await service(request).talks(township=township, year=year)

    @router.post(
        "/v1/townships/{township}/talks/{talk_id}/rectification",
        response_model=TalkView,
        responses=_ANSWERS,
    )
    async def report_rectification(
        request: Request,
        township: str,
        talk_id: str,
        details: RectificationReport,
        key: IdempotencyKey = None,
    ) -> TalkView | JSONResponse:
        """The township reports its rectification done; past the deadline it shows late."""
        return await _answered(
            service(request).report_rectification(township, talk_id, details, _caller(request), key)
        )

    @router.get("/v1/townships/{township}/talks", response_model=list[TalkView])
    async def township_talks(
        request: Request,
        township: str,
        year: Annotated[str, Query(description="Talks requested or due in this year.")],
    ) -> list[TalkView]:
        return await service(request).talks(township=township, year=year)


def _add_record_routes(router: APIRouter, service: Service) -> None:
    """Praise and criticism (通报) and the one-vote veto (一票否决)."""

    @router.post(
        "/v1/townships/{township}/notices",
        status_code=201,
        response_model=NoticeView,
        responses=_ANSWERS,
    )
    async def record_notice(
        request: Request, township: str, details: NoticeDetails, key: IdempotencyKey = None
    ) -> NoticeView | JSONResponse:
        """通报表扬 / 通报批评 of a township for a year, recorded by the city government."""
        return await _answered(
            service(request).record_notice(township, details, _caller(request), key)
        )

    @router.post(
        "/v1/townships/{township}/vetoes",
        status_code=201,
        response_model=VetoView,
        responses=_ANSWERS,
    )
    async def record_veto(
        request: Request, township: str, details: VetoDetails, key: IdempotencyKey = None
    ) -> VetoView | JSONResponse:
        """一票否决 in the township's annual assessment; one per township and year."""
        return await _answered(
            service(request).record_veto(township, details, _caller(request), key)
        )


def _add_report_routes(router: APIRouter, service: Service) -> None:
    """The quarterly report: entered, submitted, received."""

    @router.put(
        "/v1/townships/{township}/reports/{quarter}",
        response_model=QuarterView,
        responses=_ANSWERS,
    )
    async def enter_report(
        request: Request,
        township: str,
        quarter: str,
        figures: QuarterFigures,
        key: IdempotencyKey = None,
    ) -> QuarterView | JSONResponse:
        """The township enters (or corrects, until submitted) its quarter's responsibility
        targets and findings; the answer sets the bus's figures beside them."""
        return await _answered(
            service(request).enter_report(township, quarter, figures, _caller(request), key)
        )

    @router.post(
        "/v1/townships/{township}/reports/{quarter}/submission",
        response_model=QuarterView,
        responses=_ANSWERS,
    )
    async def submit_report(
        request: Request, township: str, quarter: str, key: IdempotencyKey = None
    ) -> QuarterView | JSONResponse:
        """每季度向市政府书面汇报: the township submits; the report no longer changes."""
        return await _answered(
            service(request).submit_report(township, quarter, _caller(request), key)
        )

    @router.post(
        "/v1/townships/{township}/reports/{quarter}/receipt",
        response_model=QuarterView,
        responses=_ANSWERS,
    )
    async def receive_report(
        request: Request, township: str, quarter: str, key: IdempotencyKey = None
    ) -> QuarterView | JSONResponse:
        """The city government marks a submitted report received."""
        return await _answered(
            service(request).receive_report(township, quarter, _caller(request), key)
        )


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
