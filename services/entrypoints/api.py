"""The registry's HTTP API (FastAPI; its OpenAPI document is generated at /openapi.json)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from events.apidocs import serve_offline_docs
from events.catalogue import load_catalogue
from events.errors import UnknownDepartment
from events.identifiers import mask_identifier
from events.models import (
    CaseDetails,
    ClosureDetails,
    ClueDetails,
    ConfiscationDetails,
    CorrectionDetails,
    LandProceduresDetails,
    PenaltyDetails,
    RectificationDetails,
    RevocationDetails,
)
from services.access import (
    CheckGrants,
    Principal,
    RateLimiter,
    TokenStore,
    decide,
    retry_after,
)
from services.adapters.kafka import client_options
from services.blocklist.queries import CentralChecks, CheckAnswer, ListsAreStale, StaleAnswer
from services.bootstrap import bootstrap_registry, central_checks, department_queries
from services.config import KafkaAuth, Settings, load_settings
from services.departments.queries import BlockList, DepartmentQueries
from services.entrypoints.body_limit import MAX_BODY_BYTES, BodyLimit
from services.entrypoints.report_routes import report_router
from services.errors import ConfigError, DatabaseError, InvalidInput, RedlineError
from services.metrics import CHECK_OUTCOMES, CHECK_REQUESTS, CHECK_SECONDS
from services.registry.domain import (
    AlreadySigned,
    CaseStatus,
    IllegalTransition,
    NotASignatory,
    Step,
)
from services.registry.handlers import (
    CasePage,
    CaseSummary,
    CaseView,
    ClueSummary,
    NotFound,
    Registry,
    RestorationSummary,
    SignOffDetails,
)
from services.runtime.service import configure_logging

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A retried POST with this key returns the first answer, writes nothing new.",
    ),
]


class FieldError(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    error: str
    errors: list[FieldError] = []


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# What any call may answer besides its own result (the OpenAPI document lists them all).
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: _documented("No bearer token, or one that is not known."),
    403: _documented("The token's role may not make this call."),
    413: _documented(f"The request body is over {MAX_BODY_BYTES} bytes (the limit is named)."),
    422: _documented("Bad input, each field named with the reason."),
    503: _documented("The database is unreachable; try again."),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _documented("No such case.")}
ON_A_CASE: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: _documented("The case's state does not allow this step (both states named)."),
}
SIGN_OFF: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    403: _documented("The token's role signs for neither body."),
    409: _documented("The case is not rectified, or this body has already signed."),
}


CHECK_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: _documented(
        "The token may not check this measure: a department checks its own measures, a "
        "subscriber those granted to it (the measure and the reason are named)."
    ),
    429: _documented("Too many checks from this token; Retry-After says when to try again."),
    503: {
        "model": StaleAnswer | ErrorBody,
        "description": "Stale: the blocklist builder has not vouched for its tables within "
        "the freshness bound, so no answer is given as current (`last_known` is what they "
        "held); or the database is unreachable.",
    },
}


class Health(BaseModel):
    """`ok` when the database and the broker answer, else what is wrong with each."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded", "down"]


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _error(status: int, message: str, errors: list[FieldError] | None = None) -> JSONResponse:
    body = ErrorBody(error=message, errors=errors or [])
    return JSONResponse(status_code=status, content=body.model_dump())


async def _observed_check(
    central: CentralChecks, measure: str, subject: str, site: str | None
) -> CheckAnswer:
    began = time.perf_counter()
    try:
        answer = await central.check(measure, subject, site)
    except InvalidInput:
        CHECK_REQUESTS.labels("registry", "refused").inc()
        raise
    except ListsAreStale:
        CHECK_REQUESTS.labels("registry", "stale").inc()
        CHECK_SECONDS.labels("registry").observe(time.perf_counter() - began)
        raise
    CHECK_REQUESTS.labels("registry", answer.status).inc()
    CHECK_SECONDS.labels("registry").observe(time.perf_counter() - began)
    return answer


def _check_refusal(
    principal: Principal, measure: str, grants: CheckGrants, limiter: RateLimiter
) -> JSONResponse | None:
    """429 past the principal's rate (every check counts, refused or not), else 403 when
    it may not check `measure`, else None."""
    wait = limiter.take(principal.name)
    if wait is not None:
        CHECK_REQUESTS.labels("registry", "refused").inc()
        reason = (
            f"too many checks from {principal.name}: at most {limiter.rate:g} a second, "
            f"{limiter.burst} at once; retry after {retry_after(wait)} s"
        )
        response = _error(429, reason, [FieldError(field="Authorization", reason=reason)])
        response.headers["Retry-After"] = retry_after(wait)
        return response
    refusal = grants.refusal(principal, measure)
    if refusal is not None:
        CHECK_REQUESTS.labels("registry", "refused").inc()
        return _error(403, refusal, [FieldError(field="measure", reason=refusal)])
    return None


def _guard(app: FastAPI, tokens: TokenStore) -> None:
    """Every request shows a bearer token its role allows (services/access.py POLICY)."""

    @app.middleware("http")
    async def authorise(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        principal = None
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            principal = tokens.principal(token.strip()) if scheme.lower() == "bearer" else None
            if principal is None:
                return _refuse(401, "the bearer token is not known (Authorization: Bearer …)")
        refusal = decide(principal, request.method, request.url.path)
        if refusal is not None:
            return _refuse(401 if principal is None else 403, refusal)
        request.state.principal = principal
        return await call_next(request)


def _refuse_nul(app: FastAPI) -> None:
    """PostgreSQL text cannot hold U+0000: a path or query value with one is bad input
    (422 naming it), not a database failure."""

    @app.middleware("http")
    async def no_nul(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        found = ["path"] if "\x00" in request.url.path else []
        found += [
            name or "query"
            for name, value in request.query_params.multi_items()
            if "\x00" in name + value
        ]
        if found:
            reason = "contains a NUL character (U+0000)"
            errors = [FieldError(field=field, reason=reason) for field in found]
            return _error(422, f"invalid input: {found[0]}: {reason}", errors)
        return await call_next(request)


def _refuse(status: int, reason: str) -> JSONResponse:
    response = _error(status, reason, [FieldError(field="Authorization", reason=reason)])
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="redline"'
    return response


def _answer_errors(app: FastAPI) -> None:
    """Each refusal as `{"error", "errors": [{"field", "reason"}]}` with its status."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(field=_field(tuple(e["loc"])), reason=e["msg"].removeprefix("Value error, "))
            for e in exc.errors()
        ]
        return _error(
            422, "invalid input: " + "; ".join(f"{e.field}: {e.reason}" for e in errors), errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals in the same shape; a body it cannot even parse (bytes
        that are not UTF-8 JSON) is bad input like any other, so 422, not a bare 400."""
        if exc.status_code == 400:
            reason = f"not a JSON document: {exc.detail}"
            return _error(
                422, f"invalid input: body: {reason}", [FieldError(field="body", reason=reason)]
            )
        response = _error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(InvalidInput)
    async def invalid_input(request: Request, exc: InvalidInput) -> JSONResponse:
        return _error(422, str(exc), [FieldError(field=exc.field, reason=exc.reason)])

    @app.exception_handler(IllegalTransition)
    async def illegal(request: Request, exc: IllegalTransition) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(AlreadySigned)
    async def signed_twice(request: Request, exc: AlreadySigned) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(NotASignatory)
    async def not_a_signatory(request: Request, exc: NotASignatory) -> JSONResponse:
        return _error(403, str(exc), [FieldError(field="Authorization", reason=str(exc))])

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(DatabaseError)
    async def unavailable(request: Request, exc: DatabaseError) -> JSONResponse:
        return _error(503, f"database unavailable: {exc}")

    @app.exception_handler(ConfigError)
    async def unknown(request: Request, exc: ConfigError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(UnknownDepartment)
    async def unknown_department(request: Request, exc: UnknownDepartment) -> JSONResponse:
        return _error(404, str(exc))


def _serve_metrics(app: FastAPI) -> None:
    """/metrics on the API's own port, the check series created at zero."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for outcome in CHECK_OUTCOMES:
        CHECK_REQUESTS.labels("registry", outcome)
    CHECK_SECONDS.labels("registry")


def _serve_checks(app: FastAPI, settings: Settings) -> None:
    """GET /v1/checks: each principal bound to its measures, and rate limited."""
    grants = CheckGrants(load_catalogue())
    limiter = RateLimiter(settings.check_rate, settings.check_burst)

    @app.get("/v1/checks", response_model=CheckAnswer, responses=CHECK_REFUSALS)
    async def check(
        request: Request,
        subject: Annotated[str, Query(description="USCC or resident ID number, as presented")],
        measure: Annotated[str, Query(description="A measure code, e.g. refuse_power_supply")],
        site: Annotated[
            str | None,
            Query(
                description="Where the service is asked for: a real-estate unit code, a parcel "
                "code or the address. Required for a measure held against a site (water, "
                "power, gas); ignored for one held against the subject (loans)."
            ),
        ] = None,
    ) -> CheckAnswer | Response:
        """Whether a subject is blocked under a measure (at a site, for a site-held measure),
        for those without a local replica. A department checks its own measures, a
        subscriber those granted to it; each token's checks are rate limited. Stale (503),
        never clear, while the blocklist builder has not vouched for its tables lately."""
        refused = _check_refusal(request.state.principal, measure, grants, limiter)
        if refused is not None:
            return refused
        try:
            return await _observed_check(request.app.state.checks, measure, subject, site)
        except ListsAreStale as stale:
            return JSONResponse(status_code=503, content=stale.answer.model_dump(mode="json"))


def create_app(
    settings: Settings,
    registry: Registry | None = None,
    queries: DepartmentQueries | None = None,
    checks: CentralChecks | None = None,
    tokens: TokenStore | None = None,
) -> FastAPI:
    """Build the app; what is not given is bootstrapped from `settings` at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if registry is not None and queries is not None and checks is not None:
                yield
                return
            async with (
                bootstrap_registry(settings) as real,
                department_queries(settings) as reads,
                central_checks(settings) as central,
            ):
                app.state.registry = real
                app.state.queries = reads
                app.state.checks = central
                yield
        finally:
            await app.state.health.close()

    app = FastAPI(
        title="Redline registry",
        version="1",
        summary="Cases of illegal farmland occupation, from clue to verified restoration.",
        lifespan=lifespan,
        responses=REFUSALS,
        # FastAPI's own pages load Swagger UI and ReDoc from a public CDN: blank on a
        # government network. These come from the installation (events/apidocs.py).
        docs_url=None,
        redoc_url=None,
    )
    serve_offline_docs(app, app.title)
    app.state.registry = registry
    app.state.queries = queries
    app.state.checks = checks
    _serve_metrics(app)
    _serve_health(app, settings)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)  # inside the token check
    _refuse_nul(app)
    _guard(app, tokens or TokenStore.load(settings.api_tokens))  # runs first: added last
    _answer_errors(app)

    def reg(request: Request) -> Registry:
        found: Registry = request.app.state.registry
        return found

    @app.post("/v1/clues", status_code=201, response_model=ClueSummary)
    async def report_clue(
        request: Request, details: ClueDetails, key: IdempotencyKey = None
    ) -> ClueSummary:
        return await reg(request).report_clue(details, key)

    @app.post("/v1/cases", status_code=201, response_model=CaseSummary)
    async def file_case(
        request: Request, details: CaseDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        return await reg(request).file_case(details, key)

    @app.post("/v1/cases/{case_id}/penalty", response_model=CaseSummary, responses=ON_A_CASE)
    async def decide_penalty(
        request: Request, case_id: str, details: PenaltyDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        return await reg(request).record_step(case_id, Step.penalty, details, key)

    @app.post("/v1/cases/{case_id}/rectification", response_model=CaseSummary, responses=ON_A_CASE)
    async def record_rectification(
        request: Request, case_id: str, details: RectificationDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        return await reg(request).record_step(case_id, Step.rectification, details, key)

    @app.post(
        "/v1/cases/{case_id}/restoration/sign-offs",
        response_model=RestorationSummary,
        responses=SIGN_OFF,
    )
    async def sign_off_restoration(
        request: Request, case_id: str, details: SignOffDetails, key: IdempotencyKey = None
    ) -> RestorationSummary:
        """Restoration (复耕验收) is verified by natural resources together with agriculture:
        a case officer signs for the one, an agriculture inspector for the other; the second
        body's sign-off restores the case and emits restoration_verified."""
        signer: Principal = request.state.principal
        return await reg(request).sign_off_restoration(case_id, signer, details, key)

    @app.post("/v1/cases/{case_id}/revocation", response_model=CaseSummary, responses=ON_A_CASE)
    async def revoke(
        request: Request, case_id: str, details: RevocationDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        return await reg(request).record_step(case_id, Step.revocation, details, key)

    @app.post("/v1/cases/{case_id}/closure", response_model=CaseSummary, responses=ON_A_CASE)
    async def close(
        request: Request, case_id: str, details: ClosureDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        return await reg(request).record_step(case_id, Step.closure, details, key)

    @app.post("/v1/cases/{case_id}/correction", response_model=CaseSummary, responses=ON_A_CASE)
    async def correct(
        request: Request, case_id: str, details: CorrectionDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        return await reg(request).record_step(case_id, Step.correction, details, key)

    @app.post(
        "/v1/cases/{case_id}/land-procedures", response_model=CaseSummary, responses=ON_A_CASE
    )
    async def obtain_land_procedures(
        request: Request, case_id: str, details: LandProceduresDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        """Lawful land procedures obtained (补办合法用地手续): the case is legalised, and the
        measures that hold only until then are lifted."""
        return await reg(request).record_step(case_id, Step.land_procedures, details, key)

    @app.post("/v1/cases/{case_id}/confiscation", response_model=CaseSummary, responses=ON_A_CASE)
    async def complete_confiscation(
        request: Request, case_id: str, details: ConfiscationDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        """Confiscation completed (没收到位): it ends the case, lifts its blocks and starts
        finance's supervision of the confiscated property."""
        return await reg(request).record_step(case_id, Step.confiscation, details, key)

    @app.get("/v1/cases/{case_id}", response_model=CaseView, responses=NOT_FOUND)
    async def get_case(request: Request, case_id: str) -> CaseView:
        return await reg(request).get_case(case_id)

    @app.get("/v1/cases", response_model=CasePage)
    async def list_cases(
        request: Request,
        township: str | None = None,
        status: CaseStatus | None = None,
        after: Annotated[str | None, Query(description="next_after of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> CasePage:
        return await reg(request).list_cases(
            township=township, status=status, after=after, limit=limit
        )

    @app.get(
        "/v1/departments/{code}/blocks",
        response_model=BlockList,
        responses={404: _documented("No such department.")},
    )
    async def department_blocks(
        request: Request,
        code: str,
        *,
        subject: Annotated[str | None, Query(description="Only this subject's blocks")] = None,
        site: Annotated[
            str | None,
            Query(
                description="Only blocks held against this site: unit code, parcel code or "
                "location text, as recorded"
            ),
        ] = None,
        project: Annotated[
            str | None, Query(description="Only blocks held against this project (its code)")
        ] = None,
        include_lifted: bool = False,
    ) -> BlockList:
        reads: DepartmentQueries = request.app.state.queries
        blocks = await reads.blocks(
            code,
            subject_id=subject,
            active_only=not include_lifted,
            site=site,
            project=project,
        )
        return BlockList(blocks=blocks)

    _serve_checks(app, settings)

    app.include_router(report_router(settings))
    return app


def _serve_health(app: FastAPI, settings: Settings) -> None:
    """GET /healthz, open to anyone (probes send no token): cheap by construction."""
    app.state.health = HealthProbes(app, settings)

    @app.get(
        "/healthz",
        response_model=Health,
        responses={503: {"model": Health, "description": "The database or the broker is down."}},
    )
    async def healthz(request: Request) -> JSONResponse:
        """From the checks' connection pool and one long-lived broker client, each probed at
        most once a few seconds however often this is asked: it needs no token, so it must
        cost a caller nothing."""
        try:
            settings.require()
        except RedlineError as exc:
            return JSONResponse(status_code=503, content={"status": "down", "error": str(exc)})
        probes: HealthProbes = request.app.state.health
        checks = {"database": await probes.database(), "broker": await probes.broker()}
        healthy = all(value == "ok" for value in checks.values())
        return JSONResponse(
            status_code=200 if healthy else 503,
            content={"status": "ok" if healthy else "degraded", **checks},
        )


PROBE_TIMEOUT = 3.0
log = logging.getLogger("redline.api")


class CachedProbe:
    """A probe run at most once per `ttl` seconds however many ask: concurrent callers
    share one run, later ones its result until it is older than `ttl`."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[str]],
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe
        self.ttl = ttl
        self.monotonic = monotonic
        self._result: tuple[str, float] | None = None
        self._lock: asyncio.Lock | None = None  # made on first use, in the serving loop

    def _cached(self) -> str | None:
        if self._result is not None and self.monotonic() - self._result[1] < self.ttl:
            return self._result[0]
        return None

    async def __call__(self) -> str:
        cached = self._cached()
        if cached is not None:
            return cached
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            cached = self._cached()  # another caller probed while this one waited
            if cached is None:
                cached = await self.probe()
                self._result = (cached, self.monotonic())
        return cached


class BrokerProbe:
    """Lists the topics over one admin client kept open between probes, made again only
    after a failure (a client per request cost a connection and a metadata round each)."""

    def __init__(self, bootstrap: str, auth: KafkaAuth | None) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self._admin: AIOKafkaAdminClient | None = None

    async def __call__(self) -> str:
        try:
            if self._admin is None:
                self._admin = AIOKafkaAdminClient(
                    bootstrap_servers=self.bootstrap,
                    request_timeout_ms=2000,
                    **client_options(self.auth),
                )
                await asyncio.wait_for(self._admin.start(), PROBE_TIMEOUT)
            await asyncio.wait_for(self._admin.list_topics(), PROBE_TIMEOUT)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("health: broker unreachable: %r", exc)
            await self.close()
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                await admin.close()
            except (KafkaError, OSError) as exc:  # closing a broken client: nothing to keep
                log.debug("health: closing the broker probe: %r", exc)


class HealthProbes:
    """/healthz's probes: the database through the checks' pool (cached a second), the
    broker through one kept client (cached a few seconds)."""

    DATABASE_TTL = 1.0
    BROKER_TTL = 5.0

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._broker: BrokerProbe | None = None
        self.database = CachedProbe(self._ping_database, self.DATABASE_TTL)
        self.broker = CachedProbe(self._probe_broker, self.BROKER_TTL)

    async def _ping_database(self) -> str:
        central: CentralChecks = self.app.state.checks
        try:
            await asyncio.wait_for(central.ping(), PROBE_TIMEOUT)
        except (DatabaseError, TimeoutError) as exc:
            log.warning("health: database unreachable: %s", exc)
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def _probe_broker(self) -> str:
        if self._broker is None:
            kafka, _ = self.settings.require()
            self._broker = BrokerProbe(kafka, self.settings.kafka_auth)
        return await self._broker()

    async def close(self) -> None:
        if self._broker is not None:
            await self._broker.close()


_SUBJECT_IN_QUERY = re.compile(r"(subject=)([^&\s]+)")


class MaskSubjects(logging.Filter):
    """Access log lines keep the path but not the ID a check was asked about."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SUBJECT_IN_QUERY.sub(lambda m: m[1] + mask_identifier(m[2]), arg)
                if isinstance(arg, str)
                else arg
                for arg in record.args
            )
        return True


def main() -> None:
    settings = load_settings()
    settings.require()
    host = os.environ.get("REDLINE_API_HOST", "127.0.0.1")
    configure_logging()
    logging.getLogger("uvicorn.access").addFilter(MaskSubjects())
    uvicorn.run(create_app(settings), host=host, port=settings.api_port, log_level="info")


if __name__ == "__main__":
    main()
