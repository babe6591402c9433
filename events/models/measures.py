"""What happens to a measure once decided: accountability, applied, lifted, failed, and a
response overdue."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    AwareDatetime,
    Field,
)

from events.models.facts import MeasureDecision
from events.models.values import AreaTotal, Id, Name, NonEmptyText, Payload


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
