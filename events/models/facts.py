"""The facts of a case the measures' conditions depend on: the parcels occupied, the
building's use, and the measure decisions taken from them."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import (
    Field,
    model_validator,
)

from events.catalogue import Fact, Target
from events.land import MAX_PARCEL_MU, LandClass, is_cultivated, m2_to_mu
from events.models.subjects import Project, Site
from events.models.values import (
    _FLOAT_REFUSED,
    MAX_PARCEL_M2,
    Area,
    Id,
    NonEmptyText,
    _Frozen,
    _plain,
)


def _m2_decimal(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError(f"area_m2 {_FLOAT_REFUSED}")
    if not isinstance(value, int | str | Decimal):
        raise ValueError("area_m2 must be a decimal string or an integer")
    try:
        area = Decimal(_plain(value, "area_m2") if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError("area_m2 is not a decimal number") from None
    if not area.is_finite() or area <= 0:
        raise ValueError("area_m2 must be a finite number greater than 0")
    if area > MAX_PARCEL_M2:  # before converting, which would overflow
        raise ValueError(f"area_m2 must be at most {MAX_PARCEL_M2:.2f} m² ({MAX_PARCEL_MU} mu)")
    return area


class Parcel(_Frozen):
    """One occupied parcel; input may give `area_m2` instead, converted exactly to mu."""

    land_class: LandClass
    area_mu: Area

    @model_validator(mode="before")
    @classmethod
    def _from_m2(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        has_mu, has_m2 = "area_mu" in data, "area_m2" in data
        if has_mu == has_m2:
            raise ValueError("give exactly one of area_mu or area_m2")
        if not has_m2:
            return data
        converted = {k: v for k, v in data.items() if k != "area_m2"}
        converted["area_mu"] = m2_to_mu(_m2_decimal(data["area_m2"]))
        return converted

    @classmethod
    def from_m2(cls, land_class: LandClass, area_m2: Decimal | int | str) -> Parcel:
        """Build from square metres, as surveys report them."""
        return cls.model_validate({"land_class": land_class, "area_m2": area_m2})


def basic_farmland_mu(parcels: Iterable[Parcel]) -> Decimal:
    """Permanent basic farmland occupied, for the 5 mu accountability threshold."""
    return sum(
        (p.area_mu for p in parcels if p.land_class is LandClass.permanent_basic_farmland),
        Decimal(0),
    )


def cultivated_mu(parcels: Iterable[Parcel]) -> Decimal:
    """Cultivated land occupied, basic farmland included, for the 10 mu threshold."""
    return sum((p.area_mu for p in parcels if is_cultivated(p.land_class)), Decimal(0))


class BuildingUse(StrEnum):
    """What the illegal building on the land is used for."""

    business_premises = "business_premises"  # 生产经营场所
    residence = "residence"
    storage = "storage"
    none = "none"  # no building (open works, ponds, farming, trees)


class CaseFacts(_Frozen):
    """What the seed's sentences condition each measure on, recorded at filing and
    corrected like every other field."""

    site: Site
    project: Project | None = None
    building_use: BuildingUse = BuildingUse.none
    non_compliant_farming: bool = Field(
        default=False,
        description="Agricultural production that breaks land-use control (不符合耕地用途管制).",
    )
    illegal_afforestation: bool = Field(default=False, description="违规造林 on the land.")
    in_nature_reserve: bool | None = Field(
        default=None,
        description="The occupied land lies inside a nature reserve (自然保护区); None: not "
        "recorded, which sends no referral. Not part of the site, so recording it moves no block.",
    )


class MeasureDecision(_Frozen):
    """A measure an event starts, with why: the land classes and facts its condition
    matched (events.decisions.decide); the catalogue gives its sentence and deadline."""

    measure: Id
    target: Target
    land: tuple[LandClass, ...] = ()
    facts: tuple[Fact, ...] = ()
    rule: NonEmptyText
