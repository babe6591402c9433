"""The registry's HTTP API (FastAPI; its OpenAPI document is generated at /openapi.json)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from events.apidocs import serve_offline_docs
from events.errors import UnknownDepartment
from events.identifiers import mask_identifier
from services.access import TokenStore, decide
from services.blocklist.queries import CentralChecks
from services.bootstrap import bootstrap_registry, central_checks, department_queries
from services.config import Settings, load_settings
from services.departments.queries import DepartmentQueries
from services.entrypoints.block_routes import block_router
from services.entrypoints.body_limit import MAX_BODY_BYTES, BodyLimit
from services.entrypoints.case_routes import case_router
from services.entrypoints.check_routes import check_router
from services.entrypoints.clue_routes import clue_router
from services.entrypoints.health_routes import serve_health
from services.entrypoints.referral_routes import serve_referrals
from services.entrypoints.refusals import FieldError, answer_refusals, documented, error
from services.entrypoints.report_routes import report_router
from services.entrypoints.township_routes import township_router
from services.errors import ConfigError, DatabaseError, InvalidInput
from services.registry.domain import AlreadySigned, IllegalTransition, NotASignatory
from services.registry.handlers import NotFound, Registry
from services.runtime.service import configure_logging
from services.townships.directory import load_townships

# What any call may answer besides its own result (the OpenAPI document lists them all).
REFUSALS: dict[int | str, dict[str, Any]] = {
    401: documented("No bearer token, or one that is not known."),
    403: documented("The token's role may not make this call."),
    413: documented(f"The request body is over {MAX_BODY_BYTES} bytes (the limit is named)."),
    422: documented("Bad input, each field named with the reason."),
    503: documented("The database is unreachable; try again."),
}


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


class Gate:
    """Pure ASGI middleware, first on every request: a bearer token its role allows
    (services/access.py POLICY), then no NUL in the path or query (PostgreSQL text cannot
    hold U+0000: bad input, 422 naming it, not a database failure). Not `@app.middleware`:
    each of those wraps every request in a task group and a streamed response (a quarter of
    the registry's samples at 50 filings/s under py-spy, #19)."""

    def __init__(self, app: ASGIApp, tokens: TokenStore) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        principal = None
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            principal = self.tokens.principal(token.strip()) if scheme.lower() == "bearer" else None
            if principal is None:
                unknown = "the bearer token is not known (Authorization: Bearer …)"
                await _refuse(401, unknown)(scope, receive, send)
                return
        refusal = decide(principal, request.method, request.url.path)
        if refusal is not None:
            await _refuse(401 if principal is None else 403, refusal)(scope, receive, send)
            return
        found = ["path"] if "\x00" in request.url.path else []
        found += [
            name or "query"
            for name, value in request.query_params.multi_items()
            if "\x00" in name + value
        ]
        if found:
            reason = "contains a NUL character (U+0000)"
            errors = [FieldError(field=field, reason=reason) for field in found]
            await error(422, f"invalid input: {found[0]}: {reason}", errors)(scope, receive, send)
            return
        request.state.principal = principal
        await self.app(scope, receive, send)


def _refuse(status: int, reason: str) -> JSONResponse:
    response = error(status, reason, [FieldError(field="Authorization", reason=reason)])
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
        return error(
            422, "invalid input: " + "; ".join(f"{e.field}: {e.reason}" for e in errors), errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own refusals in the same shape; a body it cannot even parse (bytes
        that are not UTF-8 JSON) is bad input like any other, so 422, not a bare 400."""
        if exc.status_code == 400:
            reason = f"not a JSON document: {exc.detail}"
            return error(
                422, f"invalid input: body: {reason}", [FieldError(field="body", reason=reason)]
            )
        response = error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    answer_refusals(
        app,
        {
            InvalidInput: 422,
            IllegalTransition: 409,
            AlreadySigned: 409,
            NotFound: 404,
            ConfigError: 404,
            UnknownDepartment: 404,
        },
    )

    @app.exception_handler(NotASignatory)
    async def not_a_signatory(request: Request, exc: NotASignatory) -> JSONResponse:
        return error(403, str(exc), [FieldError(field="Authorization", reason=str(exc))])

    @app.exception_handler(DatabaseError)
    async def unavailable(request: Request, exc: DatabaseError) -> JSONResponse:
        return error(503, f"database unavailable: {exc}")


def create_app(
    settings: Settings,
    registry: Registry | None = None,
    queries: DepartmentQueries | None = None,
    checks: CentralChecks | None = None,
    tokens: TokenStore | None = None,
) -> FastAPI:
    """Build the app; what is not given is bootstrapped from `settings` at start-up."""
    injected = registry is not None and queries is not None and checks is not None
    app = FastAPI(
        title="Redline registry",
        version="1",
        summary="Cases of illegal farmland occupation, from clue to verified restoration.",
        lifespan=_lifespan(settings, injected=injected),
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
    serve_health(app, settings)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)  # inside the token check
    # Runs first (added last); a township token must name a township of townships.yaml.
    app.add_middleware(
        Gate, tokens=tokens or TokenStore.load(settings.api_tokens, townships=load_townships())
    )
    _answer_errors(app)
    for router in (
        clue_router(),
        case_router(),
        block_router(),
        check_router(settings),
        report_router(settings),
        township_router(settings),
    ):
        app.include_router(router)
    serve_referrals(app)
    return app


def _lifespan(
    settings: Settings, *, injected: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Bootstraps the registry, the department queries and the central checks from
    `settings`, unless all three were given; closes the health probes either way."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if injected:
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

    return lifespan


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
    configure_logging()
    logging.getLogger("uvicorn.access").addFilter(MaskSubjects())
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info"
    )


if __name__ == "__main__":
    main()
