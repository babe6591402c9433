"""GET /v1/departments/{code}/blocks: what one department holds, as its enforcer wrote it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from services.departments.queries import BlockList, DepartmentQueries
from services.entrypoints.refusals import documented


def block_router() -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/departments/{code}/blocks",
        response_model=BlockList,
        responses={404: documented("No such department.")},
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

    return router
