"""Read side of the departments: a department's blocks, for the CLI and the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel

from events.catalogue import load_catalogue
from services.departments.ports import DepartmentStore


class BlockView(BaseModel):
    department: str
    measure: str
    case_id: str
    subject_kind: str
    subject_id: str
    subject_name: str
    legal_basis: str
    since: datetime
    lifted_at: datetime | None
    lift_reason: str | None


class BlockList(BaseModel):
    blocks: list[BlockView]


class DepartmentQueries:
    def __init__(self, store_for: Callable[[str], DepartmentStore]) -> None:
        self.store_for = store_for

    async def blocks(
        self, code: str, *, subject_id: str | None, active_only: bool
    ) -> list[BlockView]:
        load_catalogue().department(code)  # an unknown code is refused, not an empty list
        rows = await self.store_for(code).blocks(subject_id=subject_id, active_only=active_only)
        return [
            BlockView(
                department=code,
                measure=row.measure,
                case_id=row.case_id,
                subject_kind=row.subject_kind,
                subject_id=row.subject_id,
                subject_name=row.subject_name,
                legal_basis=row.legal_basis,
                since=row.applied_at,
                lifted_at=row.lifted_at,
                lift_reason=row.lift_reason,
            )
            for row in rows
        ]
