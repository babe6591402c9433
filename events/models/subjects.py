"""What a block is held against: the subject (a person or an organisation), the site and
the project, each checked so a typo never blocks a stranger."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from events.identifiers import validate_resident_id, validate_uscc
from events.models.values import (
    DecimalStr,
    Id,
    Name,
    NonEmptyText,
    SubjectKind,
    _decimal_places,
    _Frozen,
)


class Subject(_Frozen):
    """The violator; the id is checked against its kind so a typo never blocks a stranger."""

    kind: SubjectKind
    id: str
    name: Name

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind == "organization":
            return validate_uscc(value)
        if kind == "person":
            return validate_resident_id(value)
        return value


# --- facts of the case: what the measures' conditions depend on ----------------------

# 不动产单元代码 (GB/T 37346): the 19-character parcel code (宗地代码: 6-digit division, 3-digit
# cadastral zone, 3-digit subzone, 2 letters of ownership and use, 5-digit number) and a
# 9-character building part (定着物: one letter, 8 digits).
PARCEL_CODE = re.compile(r"^[0-9]{12}[GJZ][ABSXCDEWY][0-9]{5}$")
UNIT_CODE = re.compile(r"^[0-9]{12}[GJZ][ABSXCDEWY][0-9]{5}[FLQW][0-9]{8}$")
PARCEL_CODE_LENGTH = 19


def _code(pattern: re.Pattern[str], what: str, length: int) -> Any:
    def check(value: str) -> str:
        value = value.strip().upper()
        if len(value) != length:
            raise ValueError(f"{what} has {length} characters, got {len(value)}")
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a {what} (GB/T 37346)")
        return value

    return AfterValidator(check)


ParcelCode = Annotated[str, _code(PARCEL_CODE, "parcel code (宗地代码)", 19)]
RealEstateUnit = Annotated[str, _code(UNIT_CODE, "real-estate unit code (不动产单元代码)", 28)]
Longitude = Annotated[DecimalStr, Field(ge=-180, le=180), _decimal_places(8)]
Latitude = Annotated[DecimalStr, Field(ge=-90, le=90), _decimal_places(8)]


class Coordinates(_Frozen):
    """The site's centre in CGCS2000 degrees, as the survey gives it."""

    longitude: Longitude
    latitude: Latitude


class Site(_Frozen):
    """Where the occupation is: the building or land a site-wide measure is held against.

    A utility or a licensing office matches its own customer or applicant to it by the
    real-estate unit code, the parcel code or the location text, most exact first.
    """

    location: NonEmptyText
    real_estate_unit: RealEstateUnit | None = None
    parcel_code: ParcelCode | None = None
    coordinates: Coordinates | None = None

    @model_validator(mode="after")
    def _unit_on_parcel(self) -> Site:
        unit, parcel = self.real_estate_unit, self.parcel_code
        if unit is not None and parcel is not None and unit[:PARCEL_CODE_LENGTH] != parcel:
            raise ValueError(
                f"real_estate_unit {unit} is not on parcel_code {parcel}: "
                "a unit code begins with its parcel's code"
            )
        return self


# The sector whose department answers for the project's land procedures (seed §三):
# transport (交通运输局), water (水利局), municipal works (住建局) or another.
ProjectSector = Literal["transport", "water", "municipal", "other"]


class Project(_Frozen):
    """The construction project on the occupied land (施工项目), if there is one."""

    code: Id = Field(description="The project code (项目代码) or the bureau's own reference.")
    name: Name
    works_started: bool
    construction_permit: bool = Field(
        default=False, description="A construction permit (施工许可证) is held."
    )
    sector: ProjectSector | None = Field(
        default=None,
        description="Whose sector the project is (交通, 水利, 市政...); None: not recorded.",
    )
