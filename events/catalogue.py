"""The measures catalogue: data, not code. Every department's measures come from the seed.

`catalogue.yaml` is validated by these models on load; `catalogue.schema.json` is
generated from them for readers outside Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, Protocol, TypeVar

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
from events.land import LandClass

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
SCHEMA_FILE = Path(__file__).with_name("catalogue.schema.json")

Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,40}$")]
# The registry's own authority (自然资源局): it files cases and sends most referrals.
NATURAL_RESOURCES_CODE = "natural_resources"


class Stage(StrEnum):
    """The case event that starts a measure."""

    filing = "filing"  # case.filed
    penalty = "penalty"  # case.penalty_decided
    accountability = "accountability"  # accountability.triggered
    confiscation = "confiscation"  # case.confiscation_completed (没收到位)


class LiftTrigger(StrEnum):
    """The case event that lifts a measure."""

    restoration_verified = "restoration_verified"  # 复耕验收, by both bodies
    revoked = "revoked"  # a court's decision
    land_procedures_obtained = "land_procedures_obtained"  # lawful land procedures (补办用地手续)
    confiscation_completed = "confiscation_completed"  # 没收到位: the case ends


class Target(StrEnum):
    """What a measure is held against: never wider than the seed's sentence."""

    subject = "subject"  # the violator, organisation or person, wherever it acts
    site = "site"  # the illegal building or land: the premises or the project's site
    project = "project"  # the construction project on the occupied land


class Fact(StrEnum):
    """A fact of the case a measure's condition can name; `established` decides each."""

    construction_project = "construction_project"  # 施工项目: a project on the occupied land
    works_started = "works_started"  # the project's works have started
    works_without_permit = "works_without_permit"  # started without a construction permit
    business_premises = "business_premises"  # the illegal building is used for business
    illegal_afforestation = "illegal_afforestation"  # 违规造林 on the land
    non_compliant_farming = "non_compliant_farming"  # farming that breaks land-use control
    transport_project = "transport_project"  # the project is a transport project (交通运输项目)
    water_project = "water_project"  # the project is a water project (水利项目)
    in_nature_reserve = "in_nature_reserve"  # the site lies inside a nature reserve (自然保护区)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(_Strict):
    """The facts that start a measure, as data: every part must hold."""

    land: frozenset[LandClass] = Field(
        min_length=1, description="Some occupied parcel is of one of these land classes."
    )
    all_of: tuple[Fact, ...] = Field(default=(), description="Every one of these facts.")
    any_of: tuple[Fact, ...] = Field(default=(), description="At least one of these facts.")
    none_of: tuple[Fact, ...] = Field(
        default=(), description="None of these facts: another body's sentence covers them."
    )


class Measure(_Strict):
    code: Code
    name: str = Field(min_length=3)
    name_zh: str = Field(min_length=2)
    starts_at: Stage
    when: Condition
    lifted_by: tuple[LiftTrigger, ...] = Field(min_length=1)
    targets: Target
    response_deadline_hours: int = Field(gt=0, le=24 * 90)
    seed_section: str = Field(min_length=1)
    legal_basis: str = Field(min_length=8, description="The seed's sentence, verbatim.")

    @model_validator(mode="after")
    def _target_is_established(self) -> Measure:
        """A project-targeted measure needs a project; otherwise it has nothing to hold."""
        if self.targets is Target.project and Fact.construction_project not in self.when.all_of:
            raise ValueError(
                f"{self.code} targets a project, so its condition must require "
                "construction_project in all_of"
            )
        return self


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


class Party(_Strict):
    """A body the seed gives a duty that is not a block: it receives referrals, rules on
    them, hands clues or reads assessments (公安, 纪委监委, 检察院, 法院, 市政府...)."""

    code: Code
    name: str = Field(min_length=3)
    name_zh: str = Field(min_length=2)
    seed_section: str = Field(min_length=1)
    legal_basis: str = Field(min_length=8, description="The seed's sentence, verbatim.")


class ReferralKind(_Strict):
    """A hand-over from one body to another that the receiver accepts or refuses with its
    own reference number and then answers with an outcome (移送, 申请强制执行, 报告)."""

    code: Code
    name: str = Field(min_length=3)
    name_zh: str = Field(min_length=2)
    sent_by: tuple[Code, ...] = Field(
        min_length=1, description="Who may send it: natural_resources, a department or party."
    )
    to: Code = Field(description="The receiving department or party.")
    starts_at: Stage | None = Field(
        default=None, description="Sent automatically at this stage; None: only by hand."
    )
    when: Condition | None = Field(
        default=None, description="The facts that send it automatically (with starts_at)."
    )
    answer_within_hours: int = Field(gt=0, le=24 * 90, description="To accept or refuse.")
    outcome_within_days: int = Field(gt=0, le=3 * 365, description="From acceptance.")
    outcomes: tuple[Code, ...] = Field(min_length=1, description="What the receiver may rule.")
    seed_section: str = Field(min_length=1)
    legal_basis: str = Field(min_length=8, description="The seed's sentence, verbatim.")

    @model_validator(mode="after")
    def _automatic_has_a_condition(self) -> ReferralKind:
        if (self.starts_at is None) != (self.when is None):
            raise ValueError(f"{self.code}: starts_at and when go together (automatic), or neither")
        return self


class _Coded(Protocol):
    @property
    def code(self) -> str: ...


_C = TypeVar("_C", bound=_Coded)


def _by_code(items: Sequence[_C], code: str, what: str, error: Callable[[str], Exception]) -> _C:
    """The item of that code, or `error` naming the codes there are."""
    for item in items:
        if item.code == code:
            return item
    known = ", ".join(item.code for item in items)
    raise error(f"unknown {what} {code!r}; known: {known}")


class Catalogue(_Strict):
    definitions: dict[str, object] = Field(
        default_factory=dict, description="Shared pieces the file reuses by YAML anchor."
    )
    departments: tuple[Department, ...] = Field(min_length=1)
    parties: tuple[Party, ...] = Field(default=(), description="Bodies without blocks.")
    referrals: tuple[ReferralKind, ...] = Field(default=(), description="Referral workflows.")

    @model_validator(mode="after")
    def _unique_codes(self) -> Catalogue:
        codes = [department.code for department in self.departments]
        codes += [party.code for party in self.parties]
        if len(set(codes)) != len(codes):
            raise ValueError(f"department and party codes repeat: {sorted(codes)}")
        senders = {*codes, NATURAL_RESOURCES_CODE}
        kinds = [kind.code for kind in self.referrals]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"referral codes repeat: {sorted(kinds)}")
        for kind in self.referrals:
            unknown = sorted({*kind.sent_by, kind.to} - senders)
            if unknown:
                raise ValueError(f"referral {kind.code}: unknown bodies {', '.join(unknown)}")
        shared: dict[str, Measure] = {}
        for department in self.departments:
            measures = [measure.code for measure in department.measures]
            if len(set(measures)) != len(measures):
                raise ValueError(f"{department.code}: measure codes repeat")
            for measure in department.measures:
                first = shared.setdefault(measure.code, measure)
                if first != measure:
                    raise ValueError(
                        f"{department.code}: measure {measure.code} differs from another "
                        "department's measure of that code; one code, one rule"
                    )
        return self

    def department(self, code: str) -> Department:
        return _by_code(self.departments, code, "department", UnknownDepartment)

    @property
    def codes(self) -> list[str]:
        """The departments: each runs an enforcer for its measures."""
        return [department.code for department in self.departments]

    @property
    def bodies(self) -> list[str]:
        """Departments and parties: every body that may hold a token of its own."""
        return [*self.codes, *(party.code for party in self.parties)]

    def referral(self, code: str) -> ReferralKind:
        return _by_code(self.referrals, code, "referral kind", KeyError)

    @property
    def subscriber_departments(self) -> list[Department]:
        """Utilities and banks: they check customers against blocklists at the counter."""
        return [d for d in self.departments if d.kind != "government"]

    def measures(self) -> dict[str, Measure]:
        """Every measure code once. A code several departments share (no licence, no
        funding) has one condition and one legal basis: the validator above holds them
        equal."""
        return {code: departments[0].measure(code) for code, departments in self.owners().items()}

    def owners(self) -> dict[str, tuple[Department, ...]]:
        """Every measure code once, with the departments that apply it, in catalogue order."""
        found: dict[str, list[Department]] = {}
        for department in self.departments:
            for measure in department.measures:
                found.setdefault(measure.code, []).append(department)
        return {code: tuple(departments) for code, departments in found.items()}

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
