"""The registry's command handlers: validate, apply the domain rules, write once.

Each command writes its case rows, its records and its signed events to the outbox in one
transaction; a command repeated with the same idempotency key returns the first answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict

from events.authorities import NATURAL_RESOURCES
from events.catalogue import Catalogue, Fact, Stage, Target
from events.codec import encode_signed
from events.decisions import UNRECORDED_FACTS, correct, decide
from events.envelope import MAX_EVENT_BYTES
from events.land import LandClass
from events.models import (
    AccountabilityTriggered,
    CaseClosed,
    CaseCorrected,
    CaseDetails,
    CaseFacts,
    CaseFiled,
    CaseRevoked,
    ClosureDetails,
    ClueDetails,
    ClueReported,
    ConfiscationCompleted,
    ConfiscationDetails,
    CorrectionDetails,
    LandProceduresDetails,
    LandProceduresObtained,
    LiftReason,
    MeasureDecision,
    Parcel,
    Payload,
    PenaltyDecided,
    PenaltyDetails,
    RectificationDetails,
    RectificationRecorded,
    RestorationVerified,
    RevocationDetails,
)
from events.signing import Signer
from events.topics import VIOLATIONS
from services.access import Principal
from services.errors import ConfigError, InvalidInput, RedlineError
from services.outbox.ports import OutgoingEvent
from services.registry.domain import (
    STARTED_BY_STEP,
    AccountabilityCheck,
    CaseStatus,
    MeasureSpell,
    SigningBody,
    SignOff,
    Step,
    check_accountability,
    measure_history,
    next_status,
    sign_off_restoration,
    signing_body,
    stages_reached,
    standing_sign_offs,
)
from services.registry.ports import (
    CaseRecord,
    CaseRow,
    RegistryStore,
    RegistryTransaction,
    ResponseRow,
    StoredResponse,
)

TOWNSHIPS_FILE = Path(__file__).with_name("townships.yaml")


class NotFound(RedlineError):
    """No such case (HTTP 404)."""


@dataclass(frozen=True)
class Township:
    code: str
    name: str


def load_townships(path: Path = TOWNSHIPS_FILE) -> dict[str, Township]:
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))["townships"]
        return {entry["code"]: Township(entry["code"], entry["name"]) for entry in entries}
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a townships file: {exc}") from exc


# Each step one case officer records: the details given and the event that announces it.
# Restoration is not among them: it needs both bodies' sign-offs (sign_off_restoration).
STEP_EVENTS: dict[Step, tuple[type[BaseModel], type[Payload]]] = {
    Step.penalty: (PenaltyDetails, PenaltyDecided),
    Step.rectification: (RectificationDetails, RectificationRecorded),
    Step.revocation: (RevocationDetails, CaseRevoked),
    Step.closure: (ClosureDetails, CaseClosed),
    Step.correction: (CorrectionDetails, CaseCorrected),
    Step.land_procedures: (LandProceduresDetails, LandProceduresObtained),
    Step.confiscation: (ConfiscationDetails, ConfiscationCompleted),
}


class CaseSummary(BaseModel):
    """What a command on a case answers: with the measures its events start, and why,
    and the measures a correction ends because the corrected facts no longer meet them."""

    case_id: str
    status: CaseStatus
    accountability_started: bool
    event_ids: list[str]
    starts: list[MeasureDecision] = []
    ends: list[str] = []


class SignOffDetails(BaseModel):
    """One body's sign-off; who signs, and for which body, comes from the caller's token."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    verified_on: date


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


class ResponseView(BaseModel):
    """One department's answer to one measure on the case (发起-响应-反馈)."""

    department: str
    measure: str
    action: str
    status: str  # done, done_late, pending, overdue, failed
    required_at: datetime | None
    due_at: datetime | None
    done_at: datetime | None
    reference: str | None
    error: str | None


def _response(row: ResponseRow, now: datetime) -> ResponseView:
    late = row.due_at is not None and (
        (row.done_at is not None and row.done_at > row.due_at)
        or (row.done_at is None and row.due_at < now)
    )
    if row.done_at is not None:
        status = "done_late" if late else "done"
    elif row.failed_at is not None:
        status = "failed"
    else:
        status = "overdue" if late or row.overdue_at is not None else "pending"
    return ResponseView(
        department=row.department,
        measure=row.measure,
        action=row.action,
        status=status,
        required_at=row.required_at,
        due_at=row.due_at,
        done_at=row.done_at,
        reference=row.reference,
        error=row.error,
    )


class CasePage(BaseModel):
    cases: list[CaseView]
    next_after: str | None


def _fingerprint(operation: str, body: BaseModel) -> str:
    canonical = json.dumps([operation, body.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Registry:
    """The service layer behind both the HTTP API and the CLI."""

    def __init__(
        self,
        store: RegistryStore,
        signer: Signer,
        townships: Mapping[str, Township],
        clock: Callable[[], datetime],
        timezone: ZoneInfo,
        *,
        catalogue: Catalogue,
    ) -> None:
        self.store = store
        self.signer = signer
        self.townships = townships
        self.clock = clock
        self.timezone = timezone
        self.catalogue = catalogue
        self._measures = catalogue.measures()
        self._owners = {
            code: [department.code for department in departments]
            for code, departments in catalogue.owners().items()
        }

    # --- commands ---------------------------------------------------------------------

    async def report_clue(
        self, details: ClueDetails, idempotency_key: str | None = None
    ) -> ClueSummary:
        self._check_township(details.township)
        self._check_input(details)

        async def write(tx: RegistryTransaction) -> dict[str, Any]:
            clue_id = await tx.next_clue_id(self._today())
            payload = ClueReported(clue_id=clue_id, **details.model_dump())
            await tx.insert_clue(payload.model_dump())
            event = self._event(payload, key=clue_id)
            await tx.enqueue(event)
            return ClueSummary(clue_id=clue_id, event_id=event.event_id).model_dump(mode="json")

        body = await self._once("report_clue", details, idempotency_key, write)
        return ClueSummary.model_validate(body)

    async def file_case(
        self, details: CaseDetails, idempotency_key: str | None = None
    ) -> CaseSummary:
        self._check_township(details.township)
        self._check_input(details)

        async def write(tx: RegistryTransaction) -> dict[str, Any]:
            case_id = await tx.next_case_id(self._today().year)
            if details.clue_id is not None and not await tx.take_clue(details.clue_id, case_id):
                raise InvalidInput("clue_id", f"no unused clue {details.clue_id!r}")
            starts = decide(self.catalogue, [Stage.filing], details.parcels, details.facts)
            filed = CaseFiled(case_id=case_id, starts=starts, **details.model_dump())
            check = check_accountability(filed.parcels)
            now = self.clock()
            row = CaseRow(
                case_id=case_id,
                township=filed.township,
                status=CaseStatus.filed,
                subject=filed.subject.model_dump(mode="json"),
                parcels=[parcel.model_dump(mode="json") for parcel in filed.parcels],
                basic_farmland_mu=check.basic_farmland_mu,
                cultivated_mu=check.cultivated_mu,
                violation_kind=filed.violation_kind,
                source=filed.source.value,
                found_on=filed.found_on,
                clue_id=filed.clue_id,
                accountability_started_at=now if check.due else None,
                facts=filed.facts.model_dump(mode="json"),
            )
            await tx.insert_case(row)
            event_ids = [await self._announce(tx, case_id, "filing", filed)]
            if check.due:
                triggered = self._accountability(row, check)
                starts = [*starts, *triggered.starts]
                event_ids.append(await self._announce(tx, case_id, "accountability", triggered))
            return CaseSummary(
                case_id=case_id,
                status=CaseStatus.filed,
                accountability_started=check.due,
                event_ids=event_ids,
                starts=starts,
            ).model_dump(mode="json")

        body = await self._once("file_case", details, idempotency_key, write)
        return CaseSummary.model_validate(body)

    async def record_step(
        self, case_id: str, step: Step, details: BaseModel, idempotency_key: str | None = None
    ) -> CaseSummary:
        if step not in STEP_EVENTS:
            raise InvalidInput("step", f"{step} is recorded by sign-offs, not as one step")
        details_model, event_model = STEP_EVENTS[step]
        if not isinstance(details, details_model):
            raise InvalidInput("body", f"{step} takes {details_model.__name__}")
        self._check_input(details)

        async def write(tx: RegistryTransaction) -> dict[str, Any]:
            case = await tx.case_for_update(case_id)
            if case is None:
                raise NotFound(f"no case {case_id!r}")
            status = next_status(case.status, step)
            fields: dict[str, Any] = {"case_id": case_id, **details.model_dump()}
            updated = replace(case, status=status)
            starts_accountability: AccountabilityCheck | None = None
            if isinstance(details, CorrectionDetails):
                before = (_parcels(case), _facts(case))
                facts = details.facts if details.facts is not None else before[1]
                after = (details.parcels, facts)
                reached = stages_reached(case.status, case.accountability_started_at is not None)
                change = correct(self.catalogue, reached, before, after)
                fields.update(starts=change.starts, ends=change.ends)
                check = check_accountability(details.parcels)
                if check.due and case.accountability_started_at is None:
                    starts_accountability = check
                updated = replace(
                    updated,
                    parcels=[parcel.model_dump(mode="json") for parcel in details.parcels],
                    facts=case.facts if details.facts is None else facts.model_dump(mode="json"),
                    basic_farmland_mu=check.basic_farmland_mu,
                    cultivated_mu=check.cultivated_mu,
                    accountability_started_at=(
                        self.clock() if starts_accountability else case.accountability_started_at
                    ),
                )
            elif step in STARTED_BY_STEP:
                stage = STARTED_BY_STEP[step]
                fields["starts"] = decide(self.catalogue, [stage], _parcels(case), _facts(case))
            elif isinstance(details, RectificationDetails):
                # New works are inspected anew: a sign-off given before them is void.
                await tx.void_sign_offs(
                    case_id,
                    f"a new rectification ({details.action}, completed on "
                    f"{details.completed_on}) voids the restoration sign-offs given before it",
                )
            payload = event_model.model_validate(fields)
            await tx.update_case(updated)
            starts: list[MeasureDecision] = list(fields.get("starts", []))
            event_ids = [await self._announce(tx, case_id, step.value, payload)]
            if starts_accountability is not None:
                triggered = self._accountability(updated, starts_accountability)
                starts.extend(triggered.starts)
                event_ids.append(await self._announce(tx, case_id, "accountability", triggered))
            return CaseSummary(
                case_id=case_id,
                status=status,
                accountability_started=updated.accountability_started_at is not None,
                event_ids=event_ids,
                starts=starts,
                ends=list(fields.get("ends", [])),
            ).model_dump(mode="json")

        body = await self._once(f"{step}:{case_id}", details, idempotency_key, write)
        return CaseSummary.model_validate(body)

    async def sign_off_restoration(
        self,
        case_id: str,
        signer: Principal,
        details: SignOffDetails,
        idempotency_key: str | None = None,
    ) -> RestorationSummary:
        """One body's sign-off on a rectified case's restoration (复耕验收); the second
        body's completes it: the case is restored and restoration_verified is emitted.
        Until then a body signing again on another day replaces its own sign-off
        (domain.sign_off_restoration has the rules)."""
        body = signing_body(signer.role)
        new = SignOff(body=body, officer=signer.name, verified_on=details.verified_on)
        self._check_input(details)

        async def write(tx: RegistryTransaction) -> dict[str, Any]:
            case = await tx.case_for_update(case_id)
            if case is None:
                raise NotFound(f"no case {case_id!r}")
            earlier = await tx.restoration_sign_offs(case_id)
            rectified_on = await tx.rectified_on(case_id)
            joint = sign_off_restoration(case.status, earlier, new, rectified_on=rectified_on)
            await tx.add_sign_off(case_id, new)
            status, event_ids = case.status, []
            if joint is not None:
                status = next_status(case.status, Step.restoration)
                payload = RestorationVerified(
                    case_id=case_id,
                    verified_on=joint.verified_on,
                    natural_resources_officer=joint.natural_resources_officer,
                    agriculture_officer=joint.agriculture_officer,
                )
                await tx.update_case(replace(case, status=status))
                event_ids.append(await self._announce(tx, case_id, Step.restoration.value, payload))
            signed = standing_sign_offs(earlier, new)
            return RestorationSummary(
                case_id=case_id,
                status=status,
                accountability_started=case.accountability_started_at is not None,
                event_ids=event_ids,
                signed=[_sign_off_view(s) for s in signed],
                awaiting=[b for b in SigningBody if b not in {s.body for s in signed}],
            ).model_dump(mode="json")

        operation = f"restoration-sign-off:{case_id}:{body}:{signer.name}"
        answer = await self._once(operation, details, idempotency_key, write)
        return RestorationSummary.model_validate(answer)

    # --- queries ----------------------------------------------------------------------

    async def get_case(self, case_id: str) -> CaseView:
        found = await self.store.get_case(case_id)
        if found is None:
            raise NotFound(f"no case {case_id!r}")
        now = self.clock()
        answers = [_response(row, now) for row in await self.store.responses(case_id)]
        signed = [_sign_off_view(s) for s in await self.store.restoration_sign_offs(case_id)]
        measures = [self._measure_view(s) for s in measure_history(self.catalogue, found[1])]
        return _view(*found).model_copy(
            update={"measures": measures, "responses": answers, "restoration_sign_offs": signed}
        )

    async def list_cases(
        self,
        *,
        township: str | None = None,
        status: CaseStatus | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> CasePage:
        if township is not None:
            self._check_township(township)
        rows = await self.store.list_cases(
            township=township, status=status, after=after, limit=limit
        )
        views = [_view(row, []) for row in rows]
        return CasePage(cases=views, next_after=rows[-1].case_id if len(rows) == limit else None)

    # --- helpers ----------------------------------------------------------------------

    def _measure_view(self, spell: MeasureSpell) -> MeasureView:
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

    async def _once(
        self,
        operation: str,
        request: BaseModel,
        idempotency_key: str | None,
        write: Callable[[RegistryTransaction], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Run `write` in one transaction, once per idempotency key."""
        fingerprint = _fingerprint(operation, request)
        async with self.store.transaction() as tx:
            if idempotency_key is not None:
                earlier = await tx.claim_idempotency_key(idempotency_key)
                if earlier is not None:
                    if earlier.request_hash != fingerprint:
                        raise InvalidInput(
                            "Idempotency-Key",
                            "already used for a different request; use a new key",
                        )
                    return earlier.body
            body = await write(tx)
            if idempotency_key is not None:
                await tx.save_idempotent_response(
                    idempotency_key, StoredResponse(operation, fingerprint, 200, body)
                )
            return body

    def _event(self, payload: Payload, *, key: str) -> OutgoingEvent:
        """The signed event; one too big for every consumer to take (MAX_EVENT_BYTES) is
        refused here, before anything is written, rather than dead-lettered downstream."""
        envelope, raw = encode_signed(
            payload, self.signer, source=NATURAL_RESOURCES.source, subject=key, time=self.clock()
        )
        if len(raw) > MAX_EVENT_BYTES:
            raise InvalidInput(
                "body",
                f"the {payload.event_type} event would be {len(raw)} bytes, over the limit of "
                f"{MAX_EVENT_BYTES}: shorten the texts or give fewer parcels",
            )
        return OutgoingEvent(envelope.id, envelope.type, VIOLATIONS.name, key, raw)

    async def _announce(
        self, tx: RegistryTransaction, case_id: str, step: str, payload: Payload
    ) -> str:
        event = self._event(payload, key=case_id)
        await tx.append_record(case_id, step, event, payload.model_dump(mode="json"))
        await tx.enqueue(event)
        return event.event_id

    def _accountability(self, case: CaseRow, check: AccountabilityCheck) -> AccountabilityTriggered:
        """Seed §四(五), with the accountability measures the case's facts start."""
        return AccountabilityTriggered(
            case_id=case.case_id,
            township=case.township,
            basic_farmland_mu=check.basic_farmland_mu,
            cultivated_mu=check.cultivated_mu,
            rule=check.rule,
            starts=decide(self.catalogue, [Stage.accountability], _parcels(case), _facts(case)),
        )

    def _today(self) -> date:
        return self.clock().astimezone(self.timezone).date()

    def _check_township(self, code: str) -> None:
        if code not in self.townships:
            raise InvalidInput("township", f"unknown township {code!r}")

    def _check_input(self, details: BaseModel) -> None:
        """Dates not in the future, and no NUL in any text: PostgreSQL cannot store one."""
        self._check_dates(details)
        _check_text(details.model_dump(mode="json"), "")

    def _check_dates(self, details: BaseModel) -> None:
        today = self._today()
        for name, value in details:
            if isinstance(value, date) and value > today:
                raise InvalidInput(name, f"{value} is in the future (today is {today})")


def _check_text(value: object, field: str) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise InvalidInput(field or "body", "contains a NUL character (U+0000)")
    items: list[tuple[object, object]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    for key, item in items:
        _check_text(item, f"{field}.{key}" if field else str(key))


def _parcels(case: CaseRow) -> list[Parcel]:
    return [Parcel.model_validate(parcel) for parcel in case.parcels]


def _facts(case: CaseRow) -> CaseFacts:
    """The stored facts; a case filed before facts were recorded is decided on none."""
    return UNRECORDED_FACTS if case.facts is None else CaseFacts.model_validate(case.facts)


def _sign_off_view(sign_off: SignOff) -> SignOffView:
    return SignOffView(
        body=sign_off.body, officer=sign_off.officer, verified_on=sign_off.verified_on
    )


def _view(row: CaseRow, records: list[CaseRecord]) -> CaseView:
    return CaseView(
        case_id=row.case_id,
        township=row.township,
        status=row.status,
        subject=row.subject,
        parcels=_parcels(row),
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
