"""POST /v1/clues: a clue from anyone the token policy lets report one."""

from __future__ import annotations

from fastapi import APIRouter, Request

from events.models import ClueDetails
from services.entrypoints.request_parts import IdempotencyKey, registry_of
from services.registry.views import ClueSummary


def clue_router() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/clues", status_code=201, response_model=ClueSummary)
    async def report_clue(
        request: Request, details: ClueDetails, key: IdempotencyKey = None
    ) -> ClueSummary:
        reporter = request.state.principal
        return await registry_of(request).report_clue(details, key, reporter=reporter)

    return router
