"""Who a caller is: a role and what it reaches. Pure, so the domain rules (which body signs,
which township a principal sees) use it without importing the token store and the access
table in services/access.py, which re-exports both for its callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    case_officer = "case_officer"
    agriculture_inspector = "agriculture_inspector"
    department = "department"
    subscriber = "subscriber"
    operator = "operator"
    # A township's (乡镇/街道) own officials: its reports, talks and rectifications.
    township = "township"
    # Those who find occupations on the ground and hand clues to natural resources
    # (seed §一: 村（组）日常巡查; 田长制).
    village_patrol = "village_patrol"
    field_chief = "field_chief"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    department: str | None = None
    # The township a township official, village patrol or field chief belongs to.
    township: str | None = None
    # The measures a subscriber may check; the other roles' reach comes from their role.
    measures: frozenset[str] = field(default_factory=frozenset)
