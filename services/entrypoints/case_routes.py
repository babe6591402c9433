"""The case routes: filing, the steps a case officer records, the restoration sign-offs,
and reading cases. The step routes are made from STEP_EVENTS, one per step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from events.models import CaseDetails
from services.access import Principal
from services.entrypoints.refusals import documented
from services.entrypoints.request_parts import IdempotencyKey, registry_of
from services.registry.domain import CaseStatus, Step
from services.registry.handlers import STEP_EVENTS, SignOffDetails
from services.registry.views import CasePage, CaseSummary, CaseView, RestorationSummary

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: documented("No such case.")}
ON_A_CASE: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: documented("The case's state does not allow this step (both states named)."),
}
SIGN_OFF: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    403: documented("The token's role signs for neither body."),
    409: documented("The case is not rectified, or this body has already signed."),
}

# Each step route's operation name (its OpenAPI operationId and summary, kept stable for
# generated clients) and, where the step needs saying, what it does to the case. A step
# added to STEP_EVENTS without an entry here is served as record_<step>.
STEP_OPERATIONS: dict[Step, tuple[str, str | None]] = {
    Step.penalty: ("decide_penalty", None),
    Step.rectification: ("record_rectification", None),
    Step.revocation: ("revoke", None),
    Step.closure: ("close", None),
    Step.correction: ("correct", None),
    Step.land_procedures: (
        "obtain_land_procedures",
        "Lawful land procedures obtained (补办合法用地手续): the case is legalised, and the\n"
        "measures that hold only until then are lifted.",
    ),
    Step.confiscation: (
        "complete_confiscation",
        "Confiscation completed (没收到位): it ends the case, lifts its blocks and starts\n"
        "finance's supervision of the confiscated property.",
    ),
}


def step_path(step: Step) -> str:
    return f"/v1/cases/{{case_id}}/{step.value.replace('_', '-')}"


def _record(step: Step, details_model: type[BaseModel]) -> Callable[..., Awaitable[CaseSummary]]:
    """The route for one step; FastAPI reads its body model from the `details` annotation,
    so each step's OpenAPI request body is that step's own model."""

    async def record(
        request: Request, case_id: str, details: BaseModel, key: IdempotencyKey = None
    ) -> CaseSummary:
        return await registry_of(request).record_step(case_id, step, details, key)

    record.__annotations__["details"] = details_model
    return record


def case_router() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/cases", status_code=201, response_model=CaseSummary)
    async def file_case(
        request: Request, details: CaseDetails, key: IdempotencyKey = None
    ) -> CaseSummary:
        return await registry_of(request).file_case(details, key)

    for step, (details_model, _event) in STEP_EVENTS.items():
        name, description = STEP_OPERATIONS.get(step, (f"record_{step.value}", None))
        router.add_api_route(
            step_path(step),
            _record(step, details_model),
            methods=["POST"],
            name=name,
            description=description,
            response_model=CaseSummary,
            responses=ON_A_CASE,
        )

    @router.post(
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
        return await registry_of(request).sign_off_restoration(case_id, signer, details, key)

    @router.get("/v1/cases/{case_id}", response_model=CaseView, responses=NOT_FOUND)
    async def get_case(request: Request, case_id: str) -> CaseView:
        return await registry_of(request).get_case(case_id)

    @router.get("/v1/cases", response_model=CasePage)
    async def list_cases(
        request: Request,
        township: str | None = None,
        status: CaseStatus | None = None,
        after: Annotated[str | None, Query(description="next_after of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> CasePage:
        return await registry_of(request).list_cases(
            township=township, status=status, after=after, limit=limit
        )

    return router
