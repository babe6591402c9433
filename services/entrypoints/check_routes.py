"""GET /v1/checks: the central check for those without a local replica; each principal
bound to its measures, and rate limited."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from events.catalogue import load_catalogue
from services.access import CheckGrants, Principal, RateLimiter, retry_after
from services.blocklist.queries import CentralChecks, CheckAnswer, ListsAreStale, StaleAnswer
from services.config import Settings
from services.entrypoints.refusals import ErrorBody, FieldError, documented, error
from services.errors import InvalidInput
from services.metrics import CHECK_OUTCOMES, CHECK_REQUESTS, CHECK_SECONDS

CHECK_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: documented(
        "The token may not check this measure: a department checks its own measures, a "
        "subscriber those granted to it (the measure and the reason are named)."
    ),
    429: documented("Too many checks from this token; Retry-After says when to try again."),
    503: {
        "model": StaleAnswer | ErrorBody,
        "description": "Stale: the blocklist builder has not vouched for its tables within "
        "the freshness bound, so no answer is given as current (`last_known` is what they "
        "held); or the database is unreachable.",
    },
}


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
        response = error(429, reason, [FieldError(field="Authorization", reason=reason)])
        response.headers["Retry-After"] = retry_after(wait)
        return response
    refusal = grants.refusal(principal, measure)
    if refusal is not None:
        CHECK_REQUESTS.labels("registry", "refused").inc()
        return error(403, refusal, [FieldError(field="measure", reason=refusal)])
    return None


def check_router(settings: Settings) -> APIRouter:
    """The check route, its series created at zero so a dashboard shows them from start."""
    grants = CheckGrants(load_catalogue())
    limiter = RateLimiter(settings.check_rate, settings.check_burst)
    for outcome in CHECK_OUTCOMES:
        CHECK_REQUESTS.labels("registry", outcome)
    CHECK_SECONDS.labels("registry")
    router = APIRouter()

    @router.get("/v1/checks", response_model=CheckAnswer, responses=CHECK_REFUSALS)
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

    return router
