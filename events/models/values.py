"""The value types every payload is built from: decimals carried as plain strings, bounded
text and ids, and the frozen base that refuses unknown fields."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from events.land import MAX_PARCEL_MU, MU_PER_M2

AREA_DECIMAL_PLACES = 6
MONEY_DECIMAL_PLACES = 2
# Bounds on every number a case officer gives: a fine beyond a trillion yuan is a typo or
# an attack, and a value such as "1e999999" would be answered, then fail every consumer
# (its plain form alone is a megabyte, over MAX_EVENT_BYTES).
MAX_MONEY_YUAN = 10**12
MAX_PARCELS = 500
MAX_AREA_TOTAL_MU = MAX_PARCELS * int(MAX_PARCEL_MU)
MAX_PARCEL_M2 = MAX_PARCEL_MU / MU_PER_M2
MAX_DECIMAL_CHARS = 32
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_NOT_PLAIN = (
    "must be a plain decimal such as 1234.56: digits and an optional decimal point, no exponent"
)

_FLOAT_REFUSED = "must be a decimal string or an integer, not a float (binary rounding)"


def _refuse_float(value: object) -> object:
    """Floats round in binary; a string is read only in the plain form the JSON schema
    gives (no exponent, no NaN, at most MAX_DECIMAL_CHARS), so no magnitude can hide in a
    few characters and nothing reaches Decimal arithmetic that could overflow."""
    if isinstance(value, bool | float):
        raise ValueError(_FLOAT_REFUSED)
    if isinstance(value, str):
        return _plain(value, "")
    return value


def _plain(value: str, name: str) -> str:
    text = value.strip()
    prefix = f"{name} " if name else ""
    if len(text) > MAX_DECIMAL_CHARS:
        raise ValueError(
            f"{prefix}must have at most {MAX_DECIMAL_CHARS} characters, got {len(text)}"
        )
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(prefix + _NOT_PLAIN)
    return text


def _decimal_places(places: int) -> Any:
    def check(value: Decimal) -> Decimal:
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(f"at most {places} decimal places, got {value}")
        return value

    return AfterValidator(check)


DecimalStr = Annotated[
    Decimal,
    BeforeValidator(_refuse_float),
    PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}),
]
Area = Annotated[DecimalStr, Field(gt=0, le=MAX_PARCEL_MU), _decimal_places(AREA_DECIMAL_PLACES)]
AreaTotal = Annotated[
    DecimalStr, Field(ge=0, le=MAX_AREA_TOTAL_MU), _decimal_places(AREA_DECIMAL_PLACES)
]
Money = Annotated[DecimalStr, Field(ge=0, le=MAX_MONEY_YUAN), _decimal_places(MONEY_DECIMAL_PLACES)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
NonEmptyText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
]
SubjectKind = Literal["organization", "person"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class Payload(_Frozen):
    """Base of every payload; `event_type` is the full versioned CloudEvents type."""

    event_type: ClassVar[str]
