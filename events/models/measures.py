"""What happens to a measure once decided: accountability, applied, lifted, failed, and a
response overdue."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    AwareDatetime,
    Field,
    model_validator,
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


MeasureAnswer = MeasureApplied | MeasureLifted | MeasureFailed  # what a department may answer
MAX_ANSWERS = 500  # a batch's answers beyond this go in further events (~130 kB each)


class MeasuresAnswered(Payload):
    """One department's answers to one batch of the violation stream, in order, each as it
    would be sent alone, under one signature (#19): 21 departments' answers cost the
    tracker one check of a signature per department batch instead of one per measure per
    case, and the broker one record."""

    event_type: ClassVar[str] = "redline.measure.answered.v1"

    department: Name
    answers: list[MeasureAnswer] = Field(min_length=1, max_length=MAX_ANSWERS)

    @model_validator(mode="after")
    def _one_department(self) -> MeasuresAnswered:
        others = sorted({a.department for a in self.answers} - {self.department})
        if others:
            raise ValueError(f"answers of another department than {self.department}: {others}")
        return self


class ResponseOverdue(Payload):
    """A department has not answered a measure by its deadline (发起-响应-反馈); sent once."""

    event_type: ClassVar[str] = "redline.response.overdue.v1"

    case_id: Id
    department: Name
    measure: Name
    action: Literal["apply", "lift"]
    required_at: AwareDatetime
    due_at: AwareDatetime
