"""The measures catalogue: data, not code. Every department's measures come from the seed.

`catalogue.yaml` is validated by these models on load; `catalogue.schema.json` is
generated from them for readers outside Python.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from events.errors import CatalogueError, UnknownDepartment

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
SCHEMA_FILE = Path(__file__).with_name("catalogue.schema.json")

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,40}$")]


class Stage(StrEnum):
    """The case event that starts a measure."""

    filing = "filing"  # case.filed
    penalty = "penalty"  # case.penalty_decided
    accountability = "accountability"  # accountability.triggered


class LiftTrigger(StrEnum):
    """The case event that lifts a measure."""

    restoration_verified = "restoration_verified"
    revoked = "revoked"


class Target(StrEnum):
    subject = "subject"  # the violator, organisation or person
    premises = "premises"  # the illegal building used as business premises
    project = "project"  # the construction project on the occupied land


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Measure(_Strict):
    code: Code
    name: str = Field(min_length=3)
    name_zh: str = Field(min_length=2)
    starts_at: Stage
    lifted_by: tuple[LiftTrigger, ...] = Field(min_length=1)
    targets: Target
    response_deadline_hours: int = Field(gt=0, le=24 * 90)
    seed_section: str = Field(min_length=1)
    legal_basis: str = Field(min_length=8, description="The seed's sentence, verbatim.")


class Department(_Strict):
    code: Code
    name: str = Field(min_length=3)
    name_zh: str = Field(min_length=2)
    kind: Literal["government", "utility", "financial"]
    measures: tuple[Measure, ...] = Field(min_length=1)

    def measure(self, code: str) -> Measure:
        for measure in self.measures:
            if measure.code == code:
                return measure
        raise KeyError(code)


class Catalogue(_Strict):
    definitions: dict[str, object] = Field(
        default_factory=dict, description="Shared pieces the file reuses by YAML anchor."
    )
    departments: tuple[Department, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> Catalogue:
        codes = [department.code for department in self.departments]
        if len(set(codes)) != len(codes):
            raise ValueError(f"department codes repeat: {sorted(codes)}")
        for department in self.departments:
            measures = [measure.code for measure in department.measures]
            if len(set(measures)) != len(measures):
                raise ValueError(f"{department.code}: measure codes repeat")
        return self

    def department(self, code: str) -> Department:
        for department in self.departments:
            if department.code == code:
                return department
        known = ", ".join(d.code for d in self.departments)
        raise UnknownDepartment(f"unknown department {code!r}; known: {known}")

    @property
    def codes(self) -> list[str]:
        return [department.code for department in self.departments]

    @property
    def subscriber_departments(self) -> list[Department]:
        """Utilities and banks: they check customers against blocklists at the counter."""
        return [d for d in self.departments if d.kind != "government"]

    def blocklist_measures(self) -> dict[str, Department]:
        """Each measure served as a blocklist, with the department that owns it."""
        return {m.code: d for d in self.subscriber_departments for m in d.measures}


def parse_catalogue(text: str, origin: str = "catalogue") -> Catalogue:
    try:
        return Catalogue.model_validate(yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{origin}: not YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CatalogueError(f"{origin}: {where}: {first['msg']}") from exc


@cache
def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    return parse_catalogue(path.read_text(encoding="utf-8"), str(path))
