"""Payload models: the `data` of every Redline event, one class per versioned event type.

Areas and money are decimals carried as JSON strings: a float would round in binary and an
area decides whether accountability starts. Models are frozen and refuse unknown fields,
so a producer's typo is an error rather than silently dropped data.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from events.identifiers import validate_resident_id, validate_uscc
from events.land import MAX_PARCEL_MU, LandClass, is_cultivated, m2_to_mu

AREA_DECIMAL_PLACES = 6
MONEY_DECIMAL_PLACES = 2
# A dead letter must itself fit in an event (MAX_EVENT_BYTES), so the original is cut.
MAX_DEADLETTER_ORIGINAL_BYTES = 128 * 1024

_FLOAT_REFUSED = "must be a decimal string or an integer, not a float (binary rounding)"


def _refuse_float(value: object) -> object:
    if isinstance(value, bool | float):
        raise ValueError(_FLOAT_REFUSED)
    return value


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
AreaTotal = Annotated[DecimalStr, Field(ge=0), _decimal_places(AREA_DECIMAL_PLACES)]
Money = Annotated[DecimalStr, Field(ge=0), _decimal_places(MONEY_DECIMAL_PLACES)]
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


class ClueSource(StrEnum):
    """Where a clue came from (卫片执法, drones, cameras, patrols, 信访, 举报, media, online)."""

    satellite = "satellite"
    drone = "drone"
    camera = "camera"
    patrol = "patrol"
    petition = "petition"
    tip = "tip"
    media = "media"
    online = "online"


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


def _m2_decimal(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError(f"area_m2 {_FLOAT_REFUSED}")
    if not isinstance(value, int | str | Decimal):
        raise ValueError("area_m2 must be a decimal string or an integer")
    try:
        area = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"area_m2 {value!r} is not a decimal number") from None
    if not area.is_finite() or area <= 0:
        raise ValueError(f"area_m2 must be a finite number greater than 0, got {value!r}")
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


# Each "...Details" model is what a case officer submits; the event adds the case id.
# The HTTP API and the CLI take the details models, so no schema is written twice.


class ClueDetails(_Frozen):
    source: ClueSource
    township: Name
    location: NonEmptyText
    description: NonEmptyText
    reported_on: date


class ClueReported(ClueDetails, Payload):
    event_type: ClassVar[str] = "redline.clue.reported.v1"

    clue_id: Id


class CaseFiledV1(Payload):
    """The first version of case.filed, one land class per case; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.case.filed.v1"

    case_id: Id
    township: Name
    subject: Subject
    land_class: LandClass
    area_mu: Area
    violation_kind: Name
    source: ClueSource
    found_on: date
    clue_id: Id | None


class CaseDetails(_Frozen):
    township: Name
    subject: Subject
    parcels: list[Parcel] = Field(min_length=1, max_length=500)
    violation_kind: Name
    source: ClueSource
    found_on: date
    clue_id: Id | None = None


class CaseFiled(CaseDetails, Payload):
    """A case filed (立案): the event that starts every department's measures."""

    event_type: ClassVar[str] = "redline.case.filed.v2"

    case_id: Id

    def basic_farmland_mu(self) -> Decimal:
        return basic_farmland_mu(self.parcels)

    def cultivated_mu(self) -> Decimal:
        return cultivated_mu(self.parcels)


class CorrectionDetails(_Frozen):
    """A correction of the surveyed parcels; it may start accountability late."""

    parcels: list[Parcel] = Field(min_length=1, max_length=500)
    reason: NonEmptyText


class CaseCorrected(CorrectionDetails, Payload):
    event_type: ClassVar[str] = "redline.case.corrected.v1"

    case_id: Id


class PenaltyDetails(_Frozen):
    decision_no: Name
    decided_on: date
    fine_yuan: Money
    summary: NonEmptyText


class PenaltyDecided(PenaltyDetails, Payload):
    event_type: ClassVar[str] = "redline.case.penalty_decided.v1"

    case_id: Id


class RectificationDetails(_Frozen):
    action: Literal["demolition", "confiscation", "restoration_works", "other"]
    completed_on: date
    notes: Text = ""


class RectificationRecorded(RectificationDetails, Payload):
    event_type: ClassVar[str] = "redline.case.rectification_recorded.v1"

    case_id: Id


class RestorationDetails(_Frozen):
    """Restoration (复耕验收) is verified jointly: both sign-offs are required."""

    verified_on: date
    natural_resources_officer: Name
    agriculture_officer: Name


class RestorationVerified(RestorationDetails, Payload):
    event_type: ClassVar[str] = "redline.case.restoration_verified.v1"

    case_id: Id


class RevocationDetails(_Frozen):
    court: Name
    decision_no: Name
    revoked_on: date


class CaseRevoked(RevocationDetails, Payload):
    event_type: ClassVar[str] = "redline.case.revoked.v1"

    case_id: Id


class ClosureDetails(_Frozen):
    closed_on: date
    reason: NonEmptyText


class CaseClosed(ClosureDetails, Payload):
    event_type: ClassVar[str] = "redline.case.closed.v1"

    case_id: Id


class AccountabilityTriggered(Payload):
    """Seed §四(五): ≥ 5 mu basic farmland or ≥ 10 mu cultivated land starts accountability."""

    event_type: ClassVar[str] = "redline.accountability.triggered.v1"

    case_id: Id
    township: Name
    basic_farmland_mu: AreaTotal
    cultivated_mu: AreaTotal
    rule: NonEmptyText
    addressed_to: tuple[Name, ...] = ("discipline", "organization")


class MeasureApplied(Payload):
    """A department applied a measure; `caused_by` is the event id that asked for it."""

    event_type: ClassVar[str] = "redline.measure.applied.v1"

    case_id: Id
    department: Name
    measure: Name
    reference: Name
    applied_at: AwareDatetime
    caused_by: Id


class MeasureLifted(Payload):
    """A department lifted a measure, and why."""

    event_type: ClassVar[str] = "redline.measure.lifted.v1"

    case_id: Id
    department: Name
    measure: Name
    reason: Literal["restoration_verified", "revoked", "closed"]
    lifted_at: AwareDatetime
    caused_by: Id


class MeasureFailed(Payload):
    """A department could not apply a measure: the tracker keeps chasing it."""

    event_type: ClassVar[str] = "redline.measure.failed.v1"

    case_id: Id
    department: Name
    measure: Name
    error: NonEmptyText
    caused_by: Id


class ResponseOverdue(Payload):
    """A department has not answered a measure by its deadline (发起-响应-反馈); sent once."""

    event_type: ClassVar[str] = "redline.response.overdue.v1"

    case_id: Id
    department: Name
    measure: Name
    action: Literal["apply", "lift"]
    required_at: AwareDatetime
    due_at: AwareDatetime


SubjectHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


class BlocklistCase(_Frozen):
    """One case behind a block, with the seed sentence that is its legal basis."""

    case_id: Id
    legal_basis: NonEmptyText
    since: AwareDatetime


class BlocklistEntry(Payload):
    """An active block of one measure on one subject.

    The subject travels as an HMAC of its ID under the deployment's subject key (`key_id`
    names that key) and a masked name, so a leaked replica exposes no ID numbers.
    """

    event_type: ClassVar[str] = "redline.blocklist.entry.v1"

    measure: Name
    department: Name
    subject_hash: SubjectHash
    key_id: KeyId
    subject_kind: SubjectKind
    masked_name: Name
    cases: list[BlocklistCase] = Field(min_length=1)


class BlocklistHeartbeat(Payload):
    """The builder vouches that this partition held every block it knew of at `as_of`.

    Sent only while the builder is caught up, so a quiet list stays fresh and a dead or
    lagging builder lets its subscribers' replicas go stale.
    """

    event_type: ClassVar[str] = "redline.blocklist.heartbeat.v1"

    measure: Name
    partition: int = Field(ge=0)
    key_id: KeyId
    as_of: AwareDatetime


class DeadLetter(Payload):
    """A message a consumer refused, kept with the reason so nothing is lost."""

    event_type: ClassVar[str] = "redline.deadletter.v1"

    consumer: Name
    topic: Name
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    reason: Name
    detail: Text
    original_b64: Annotated[
        str,
        StringConstraints(
            pattern=r"^[A-Za-z0-9+/]*={0,2}$",
            max_length=4 * (MAX_DEADLETTER_ORIGINAL_BYTES // 3 + 1),
        ),
    ]

    @classmethod
    def for_message(
        cls,
        *,
        consumer: str,
        topic: str,
        partition: int,
        offset: int,
        reason: str,
        detail: str,
        original: bytes,
    ) -> DeadLetter:
        """Build one from raw bytes, cutting an original too big to fit in an event."""
        if len(original) > MAX_DEADLETTER_ORIGINAL_BYTES:
            detail = f"{detail} (original truncated from {len(original)} bytes)"
            original = original[:MAX_DEADLETTER_ORIGINAL_BYTES]
        return cls(
            consumer=consumer,
            topic=topic,
            partition=partition,
            offset=offset,
            reason=reason,
            detail=detail[:4000],
            original_b64=base64.b64encode(original).decode("ascii"),
        )


PAYLOAD_TYPES: dict[str, type[Payload]] = {
    model.event_type: model
    for model in (
        ClueReported,
        CaseFiledV1,
        CaseFiled,
        CaseCorrected,
        PenaltyDecided,
        RectificationRecorded,
        RestorationVerified,
        CaseRevoked,
        CaseClosed,
        AccountabilityTriggered,
        MeasureApplied,
        MeasureLifted,
        MeasureFailed,
        ResponseOverdue,
        BlocklistEntry,
        BlocklistHeartbeat,
        DeadLetter,
    )
}
