"""Read side of the departments: a department's blocks, for the CLI and the HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, Field

from events.catalogue import Fact, Target, load_catalogue
from events.land import LandClass
from events.models import Project, Site
from services.departments.ports import Block, BlockFilter, DepartmentStore
from services.errors import InvalidInput


class BlockView(BaseModel):
    """One block: on whom, held against what, and why (the rule, the facts and land it
    matched, the seed's sentence)."""

    department: str
    measure: str
    case_id: str
    subject_kind: str
    subject_id: str
    subject_name: str
    target: Target = Field(description="What the block is held against.")
    target_ref: str = Field(
        description="That target as an officer looks it up: the subject's id, the site's "
        "location with its unit or parcel code, or the project's code and name."
    )
    site: Site | None = Field(description="The site, for a site-targeted block.")
    project: Project | None = Field(description="The project, for a project-targeted block.")
    rule: str = Field(description="The measure's condition that the case met.")
    land: list[LandClass] = Field(description="The occupied land classes it matched.")
    facts: list[Fact] = Field(description="The facts of the case it matched.")
    legal_basis: str
    since: datetime
    lifted_at: datetime | None
    lift_reason: str | None


class BlockList(BaseModel):
    blocks: list[BlockView]


def describe_target(block: Block) -> str:
    ref = block.target_ref
    if isinstance(ref, Site):
        code = ref.real_estate_unit or ref.parcel_code
        return f"{ref.location} ({code})" if code else ref.location
    if isinstance(ref, Project):
        return f"{ref.code} {ref.name}"
    if ref is None and block.target is not Target.subject:
        return f"no {block.target.value} recorded on the case"
    return ref or block.subject_id


def _filter(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise InvalidInput(field, "must not be empty; leave it out to see every block")
    return value


class DepartmentQueries:
    def __init__(self, store_for: Callable[[str], DepartmentStore]) -> None:
        self.store_for = store_for

    async def blocks(
        self,
        code: str,
        *,
        subject_id: str | None,
        active_only: bool,
        site: str | None = None,
        project: str | None = None,
    ) -> list[BlockView]:
        """`site` matches a site-targeted block's unit code, parcel code or location text
        exactly as recorded; `project` a project-targeted block's project code."""
        load_catalogue().department(code)  # an unknown code is refused, not an empty list
        where = BlockFilter(
            active_only=active_only,
            subject_id=_filter("subject", subject_id),
            site=_filter("site", site),
            project=_filter("project", project),
        )
        rows = await self.store_for(code).blocks(where)
        return [
            BlockView(
                department=code,
                measure=row.measure,
                case_id=row.case_id,
                subject_kind=row.subject_kind,
                subject_id=row.subject_id,
                subject_name=row.subject_name,
                target=row.target,
                target_ref=describe_target(row),
                site=row.target_ref if isinstance(row.target_ref, Site) else None,
                project=row.target_ref if isinstance(row.target_ref, Project) else None,
                rule=row.rule,
                land=list(row.land),
                facts=list(row.facts),
                legal_basis=row.legal_basis,
                since=row.applied_at,
                lifted_at=row.lifted_at,
                lift_reason=row.lift_reason,
            )
            for row in rows
        ]
