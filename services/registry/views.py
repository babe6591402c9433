"""The registry's read models: what the API and the CLI show of a case, and what a command
answers. Built from the stored rows; no rule of the registry is decided here."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from events.catalogue import Catalogue, Fact, Target
from events.land import LandClass
from events.models import CaseFacts, LiftReason, MeasureDecision, Parcel
from services.feedback.status import ResponseRow, ResponseStatus, status
from services.referrals.handlers import SentReferral
from services.registry.domain import CaseStatus, MeasureSpell, SigningBody, SignOff, measure_history
from services.registry.ports import CaseRecord, CaseRow, stored_parcels


class CaseSummary(BaseModel):
    """What a command on a case answers: with the measures its events start, and why,
    and the measures a correction ends because the corrected facts no longer meet them."""

    case_id: str
    status: CaseStatus
    accountability_started: bool
    event_ids: list[str]
    starts: list[MeasureDecision] = []
    ends: list[str] = []
    referrals: list[SentReferral] = []  # those the catalogue sent automatically at this step


class SignOffView(BaseModel):
    body: SigningBody
    officer: str
    verified_on: date


class RestorationSummary(CaseSummary):
    """A sign-off's answer: the case stays rectified until both bodies have signed."""

    signed: list[SignOffView]
    awaiting: list[SigningBody]


class ClueSummary(BaseModel):
    clue_id: str
    event_id: str
    reported_by: dict[str, str | None] | None = None  # None: from the command line or demo


class MeasureView(BaseModel):
    """A measure the case's records started: on what grounds, and what ended it."""

    measure: str
    name_zh: str
    departments: list[str]
    target: Target
    in_force: bool
    rule: str
    land: list[LandClass]
    facts: list[Fact]
    legal_basis: str
    started_by: str
    started_event: str
    started_at: datetime
    ended_by: LiftReason | None
    ended_event: str | None
    ended_at: datetime | None


class ResponseView(BaseModel):
    """One department's answer to one measure on the case (发起-响应-反馈)."""

    department: str
    measure: str
    action: str
    status: ResponseStatus
    required_at: datetime | None
    due_at: datetime | None
    done_at: datetime | None
    reference: str | None
    error: str | None


class CaseView(BaseModel):
    case_id: str
    township: str
    status: CaseStatus
    subject: dict[str, str]
    parcels: list[Parcel]
    facts: CaseFacts | None
    basic_farmland_mu: Decimal
    cultivated_mu: Decimal
    violation_kind: str
    source: str
    found_on: date
    clue_id: str | None
    accountability_started: bool
    filed_at: datetime | None
    updated_at: datetime | None
    records: list[dict[str, Any]]
    measures: list[MeasureView] = []
    responses: list[ResponseView] = []
    restoration_sign_offs: list[SignOffView] = []


class CasePage(BaseModel):
    cases: list[CaseView]
    next_after: str | None


class CaseViews:
    """Builds the full view of one case: the measures' names, owners and legal basis come
    from the catalogue, each department's answer's status from the feedback context."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._measures = catalogue.measures()
        self._owners = {
            code: [department.code for department in departments]
            for code, departments in catalogue.owners().items()
        }

    def case(
        self,
        row: CaseRow,
        records: list[CaseRecord],
        *,
        responses: list[ResponseRow],
        sign_offs: list[SignOff],
        now: datetime,
    ) -> CaseView:
        measures = [self.measure(spell) for spell in measure_history(self.catalogue, records)]
        return case_view(row, records).model_copy(
            update={
                "measures": measures,
                "responses": [response_view(response, now) for response in responses],
                "restoration_sign_offs": [sign_off_view(s) for s in sign_offs],
            }
        )

    def measure(self, spell: MeasureSpell) -> MeasureView:
        decision = spell.decision
        measure = self._measures.get(decision.measure)
        return MeasureView(
            measure=decision.measure,
            name_zh=measure.name_zh if measure else decision.measure,
            departments=self._owners.get(decision.measure, []),
            target=decision.target,
            in_force=spell.ended_by is None,
            rule=decision.rule,
            land=list(decision.land),
            facts=list(decision.facts),
            legal_basis=measure.legal_basis if measure else "",
            started_by=spell.started_by,
            started_event=spell.started_event,
            started_at=spell.started_at,
            ended_by=spell.ended_by,
            ended_event=spell.ended_event,
            ended_at=spell.ended_at,
        )


def response_view(row: ResponseRow, now: datetime) -> ResponseView:
    return ResponseView(
        department=row.department,
        measure=row.measure,
        action=row.action,
        status=status(row, now),
        required_at=row.required_at,
        due_at=row.due_at,
        done_at=row.done_at,
        reference=row.reference,
        error=row.error,
    )


def sign_off_view(sign_off: SignOff) -> SignOffView:
    return SignOffView(
        body=sign_off.body, officer=sign_off.officer, verified_on=sign_off.verified_on
    )


def case_view(row: CaseRow, records: list[CaseRecord]) -> CaseView:
    """The case as stored, with its records; `CaseViews.case` adds what others hold."""
    return CaseView(
        case_id=row.case_id,
        township=row.township,
        status=row.status,
        subject=row.subject,
        parcels=stored_parcels(row),
        facts=None if row.facts is None else CaseFacts.model_validate(row.facts),
        basic_farmland_mu=row.basic_farmland_mu,
        cultivated_mu=row.cultivated_mu,
        violation_kind=row.violation_kind,
        source=row.source,
        found_on=row.found_on,
        clue_id=row.clue_id,
        accountability_started=row.accountability_started_at is not None,
        filed_at=row.filed_at,
        updated_at=row.updated_at,
        records=[
            {
                "seq": record.seq,
                "step": record.step,
                "event_id": record.event_id,
                "event_type": record.event_type,
                "recorded_at": record.recorded_at.isoformat(),
                "data": record.data,
            }
            for record in records
        ],
    )
