"""Payload models: the `data` of every Redline event, one class per versioned event type.

Areas and money are decimals carried as JSON strings: a float would round in binary and an
area decides whether accountability starts. Models are frozen and refuse unknown fields,
so a producer's typo is an error rather than silently dropped data.
"""

from __future__ import annotations

import base64
import re
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

from events.catalogue import Fact, Target
from events.identifiers import validate_resident_id, validate_uscc
from events.land import MAX_PARCEL_MU, MU_PER_M2, LandClass, is_cultivated, m2_to_mu

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
# A dead letter must itself fit in an event (MAX_EVENT_BYTES), so the original is cut.
MAX_DEADLETTER_ORIGINAL_BYTES = 128 * 1024

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


class CaseFiledV2(Payload):
    """case.filed before the facts of the case; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.case.filed.v2"

    case_id: Id
    township: Name
    subject: Subject
    parcels: list[Parcel] = Field(min_length=1, max_length=500)
    violation_kind: Name
    source: ClueSource
    found_on: date
    clue_id: Id | None = None


class CaseDetails(_Frozen):
    township: Name
    subject: Subject
    parcels: list[Parcel] = Field(min_length=1, max_length=500)
    facts: CaseFacts
    violation_kind: Name
    source: ClueSource
    found_on: date
    clue_id: Id | None = None


class CaseFiled(CaseDetails, Payload):
    """A case filed (立案), with the measures its facts start and why."""

    event_type: ClassVar[str] = "redline.case.filed.v3"

    case_id: Id
    starts: list[MeasureDecision] = Field(default_factory=list)

    def basic_farmland_mu(self) -> Decimal:
        return basic_farmland_mu(self.parcels)

    def cultivated_mu(self) -> Decimal:
        return cultivated_mu(self.parcels)


class CorrectionDetails(_Frozen):
    """A correction of the surveyed parcels and, where given, of the facts; it may start
    accountability late, and starts or lifts the measures whose conditions it changes."""

    parcels: list[Parcel] = Field(min_length=1, max_length=500)
    facts: CaseFacts | None = Field(default=None, description="None: the facts stand.")
    reason: NonEmptyText


class CaseCorrectedV1(Payload):
    """case.corrected before facts and decisions; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.case.corrected.v1"

    case_id: Id
    parcels: list[Parcel] = Field(min_length=1, max_length=500)
    reason: NonEmptyText


class CaseCorrected(CorrectionDetails, Payload):
    """`ends` are lifted because the corrected facts no longer meet them (reason
    `corrected`); `starts` begin, or move to a corrected site or project."""

    event_type: ClassVar[str] = "redline.case.corrected.v2"

    case_id: Id
    starts: list[MeasureDecision] = Field(default_factory=list)
    ends: list[Id] = Field(default_factory=list)


class PenaltyDetails(_Frozen):
    decision_no: Name
    decided_on: date
    fine_yuan: Money
    summary: NonEmptyText


class PenaltyDecidedV1(PenaltyDetails, Payload):
    """case.penalty_decided before decisions; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.case.penalty_decided.v1"

    case_id: Id


class PenaltyDecided(PenaltyDetails, Payload):
    event_type: ClassVar[str] = "redline.case.penalty_decided.v2"

    case_id: Id
    starts: list[MeasureDecision] = Field(default_factory=list)


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


class LandProceduresDetails(_Frozen):
    """Lawful land procedures obtained for the occupied land (补办合法用地手续)."""

    approval_no: Name
    approved_on: date
    approved_by: Name
    notes: Text = ""


class LandProceduresObtained(LandProceduresDetails, Payload):
    """Lifts the measures that hold only until lawful land procedures (catalogue)."""

    event_type: ClassVar[str] = "redline.case.land_procedures_obtained.v1"

    case_id: Id


class ConfiscationDetails(_Frozen):
    """The confiscation carried out (没收到位): the case ends with it."""

    decision_no: Name
    completed_on: date
    property: NonEmptyText = Field(description="What was confiscated: buildings, structures, land.")
    notes: Text = ""


class ConfiscationCompleted(ConfiscationDetails, Payload):
    """Ends the case's blocks and tells finance, which supervises confiscated property."""

    event_type: ClassVar[str] = "redline.case.confiscation_completed.v1"

    case_id: Id
    starts: list[MeasureDecision] = Field(default_factory=list)


class AccountabilityTriggeredV1(Payload):
    """accountability.triggered before decisions; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.accountability.triggered.v1"

    case_id: Id
    township: Name
    basic_farmland_mu: AreaTotal
    cultivated_mu: AreaTotal
    rule: NonEmptyText
    addressed_to: tuple[Name, ...] = ("discipline", "organization")


class AccountabilityTriggered(Payload):
    """Seed §四(五): ≥ 5 mu basic farmland or ≥ 10 mu cultivated land starts accountability."""

    event_type: ClassVar[str] = "redline.accountability.triggered.v2"

    case_id: Id
    township: Name
    basic_farmland_mu: AreaTotal
    cultivated_mu: AreaTotal
    rule: NonEmptyText
    addressed_to: tuple[Name, ...] = ("public_security", "discipline", "city_government")
    starts: list[MeasureDecision] = Field(default_factory=list)


class MeasureApplied(Payload):
    """A department applied a measure; `caused_by` is the event id that asked for it."""

    event_type: ClassVar[str] = "redline.measure.applied.v1"

    case_id: Id
    department: Name
    measure: Name
    reference: Name
    applied_at: AwareDatetime
    caused_by: Id


LiftReason = Literal[
    "restoration_verified",
    "revoked",
    "land_procedures_obtained",
    "confiscation_completed",
    "corrected",
    "closed",
]


class MeasureLiftedV1(Payload):
    """measure.lifted before the newer end conditions; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.measure.lifted.v1"

    case_id: Id
    department: Name
    measure: Name
    reason: Literal["restoration_verified", "revoked", "closed"]
    lifted_at: AwareDatetime
    caused_by: Id


class MeasureLifted(Payload):
    """A department lifted a measure, and why (`corrected`: the facts no longer meet it)."""

    event_type: ClassVar[str] = "redline.measure.lifted.v2"

    case_id: Id
    department: Name
    measure: Name
    reason: LiftReason
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


class BlocklistCaseV1(_Frozen):
    case_id: Id
    legal_basis: NonEmptyText
    since: AwareDatetime


class BlocklistEntryV1(Payload):
    """blocklist.entry before targets and sites; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.blocklist.entry.v1"

    measure: Name
    department: Name
    subject_hash: SubjectHash
    key_id: KeyId
    subject_kind: SubjectKind
    masked_name: Name
    cases: list[BlocklistCaseV1] = Field(min_length=1)


class BlocklistCase(_Frozen):
    """One case behind a block: its legal basis, the facts that started it and, for a
    measure held against a site, the keyed hashes of that site's identifiers."""

    case_id: Id
    legal_basis: NonEmptyText
    since: AwareDatetime
    rule: Text = ""
    facts: tuple[Fact, ...] = ()
    site_hashes: list[SubjectHash] = Field(default_factory=list, max_length=8)


class BlocklistEntryV2(Payload):
    """blocklist.entry before list versions; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.blocklist.entry.v2"

    measure: Name
    department: Name
    target: Target
    subject_hash: SubjectHash
    key_id: KeyId
    subject_kind: SubjectKind
    masked_name: Name
    cases: list[BlocklistCase] = Field(min_length=1)


ListVersion = Annotated[int, Field(ge=0, le=2**63 - 1)]


class BlocklistEntry(Payload):
    """The active blocks of one measure on one subject.

    The subject travels as an HMAC of its ID under the measure's subject key (`key_id`
    names that key) and a masked name, so a leaked replica exposes no ID numbers. Where
    the measure targets a site (supply), each case lists its site's hashed identifiers:
    a check answers blocked only at those sites, and "blocked at another site" elsewhere.
    `version` grows with every record the builder publishes, so a replayed older record
    of the same subject (entry or lift) is recognised and ignored.
    """

    event_type: ClassVar[str] = "redline.blocklist.entry.v3"

    measure: Name
    department: Name
    target: Target
    subject_hash: SubjectHash
    key_id: KeyId
    subject_kind: SubjectKind
    masked_name: Name
    cases: list[BlocklistCase] = Field(min_length=1)
    version: ListVersion


class BlocklistLifted(Payload):
    """The builder lifts one subject from one measure's list: a signed record that takes
    the entry's place under its key. A bare tombstone (null value) is unsigned, so anyone
    who can write the topic could write one; subscribers ignore those and believe only
    this. Never followed by a tombstone: compaction keeps it, so a subscriber that was
    offline for any time still learns of the lift."""

    event_type: ClassVar[str] = "redline.blocklist.lifted.v1"

    measure: Name
    subject_hash: SubjectHash
    key_id: KeyId
    version: ListVersion


class BlocklistHeartbeatV1(Payload):
    """blocklist.heartbeat before list heads; kept only for upcasting."""

    event_type: ClassVar[str] = "redline.blocklist.heartbeat.v1"

    measure: Name
    partition: int = Field(ge=0)
    key_id: KeyId
    as_of: AwareDatetime


class BlocklistHeartbeat(Payload):
    """The builder vouches that this partition held every block it knew of at `as_of`,
    and exactly these: `entries` listed subjects whose items XOR to `digest`
    (events.blocklist_head). A replica whose own sums differ has diverged from the list.

    Sent only while the builder is caught up, so a quiet list stays fresh and a dead or
    lagging builder lets its subscribers' replicas go stale. A heartbeat without a head
    (upcast from v1) vouches for nothing: a replica cannot tell it holds the list.
    """

    event_type: ClassVar[str] = "redline.blocklist.heartbeat.v2"

    measure: Name
    partition: int = Field(ge=0)
    key_id: KeyId
    as_of: AwareDatetime
    entries: int | None = Field(default=None, ge=0)
    digest: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None


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
        CaseFiledV2,
        CaseFiled,
        CaseCorrectedV1,
        CaseCorrected,
        PenaltyDecidedV1,
        PenaltyDecided,
        RectificationRecorded,
        RestorationVerified,
        CaseRevoked,
        CaseClosed,
        LandProceduresObtained,
        ConfiscationCompleted,
        AccountabilityTriggeredV1,
        AccountabilityTriggered,
        MeasureApplied,
        MeasureLiftedV1,
        MeasureLifted,
        MeasureFailed,
        ResponseOverdue,
        BlocklistEntryV1,
        BlocklistEntryV2,
        BlocklistEntry,
        BlocklistLifted,
        BlocklistHeartbeatV1,
        BlocklistHeartbeat,
        DeadLetter,
    )
}
