"""The case's life as the registry records it: clue, filing, correction, penalty,
rectification, restoration, revocation, closure, land procedures and confiscation."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import (
    Field,
)

from events.land import LandClass
from events.models.facts import CaseFacts, MeasureDecision, Parcel, basic_farmland_mu, cultivated_mu
from events.models.subjects import Subject
from events.models.values import Area, Id, Money, Name, NonEmptyText, Payload, Text, _Frozen


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
