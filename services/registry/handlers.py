"""The registry's command handlers: validate, apply the domain rules, write once.

Each command writes its case rows, its records and its signed events to the outbox in one
transaction; a command repeated with the same idempotency key returns the first answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from events.authorities import NATURAL_RESOURCES
from events.catalogue import Catalogue, Stage
from events.codec import encode_signed
from events.decisions import correct, decide, established, occupied_classes
from events.envelope import MAX_EVENT_BYTES
from events.models import (
    AccountabilityTriggered,
    CaseClosed,
    CaseCorrected,
    CaseDetails,
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
    MeasureDecision,
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
from services.city_time import city_day
from services.errors import InvalidInput, RedlineError
from services.idempotency import once
from services.outbox.ports import OutgoingEvent
from services.referrals.domain import acting_body, clue_refusal
from services.referrals.handlers import SentReferral, send_automatic
from services.registry.domain import (
    STARTED_BY_STEP,
    AccountabilityCheck,
    CaseStatus,
    SigningBody,
    SignOff,
    Step,
    check_accountability,
    next_status,
    sign_off_restoration,
    signing_body,
    stages_reached,
    standing_sign_offs,
)
from services.registry.ports import (
    CaseRow,
    RegistryStore,
    RegistryTransaction,
    stored_facts,
    stored_parcels,
)
from services.registry.views import (
    CasePage,
    CaseSummary,
    CaseView,
    CaseViews,
    ClueSummary,
    RestorationSummary,
    case_view,
    sign_off_view,
)
from services.townships.directory import Township, TownshipAlias, check_current


class NotFound(RedlineError):
    """No such case (HTTP 404)."""


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


class SignOffDetails(BaseModel):
    """One body's sign-off; who signs, and for which body, comes from the caller's token."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    verified_on: date


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
        abolished: Mapping[str, TownshipAlias] | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.townships = townships
        self.abolished = abolished or {}
        self.clock = clock
        self.timezone = timezone
        self.catalogue = catalogue
        self.views = CaseViews(catalogue)

    # --- commands ---------------------------------------------------------------------

    async def report_clue(
        self,
        details: ClueDetails,
        idempotency_key: str | None = None,
        *,
        reporter: Principal | None = None,
    ) -> ClueSummary:
        """A clue from a case officer, any department or party, a village patrol or a field
        chief (seed §四(五), §一); the last two only in their own township. Who reported it
        is kept with the clue, not in the event: every department reads the event, and the
        name of a villager who reported is none of their business."""
        check_current(details.township, self.townships, self.abolished)
        if reporter is not None:
            refusal = clue_refusal(reporter, details.township)
            if refusal is not None:
                raise refusal
        self._check_input(details)
        reported_by = None if reporter is None else _reporter(reporter)

        async def write(tx: RegistryTransaction) -> dict[str, Any]:
            clue_id = await tx.next_clue_id(self._today())
            payload = ClueReported(clue_id=clue_id, **details.model_dump())
            await tx.insert_clue({**payload.model_dump(), "reported_by": reported_by})
            event = self._event(payload, key=clue_id)
            await tx.enqueue(event)
            answer = ClueSummary(clue_id=clue_id, event_id=event.event_id, reported_by=reported_by)
            return answer.model_dump(mode="json")

        operation = "report_clue" if reporter is None else f"report_clue:{reporter.name}"
        body = await once(self.store.transaction, operation, details, idempotency_key, write)
        return ClueSummary.model_validate(body)

    async def file_case(
        self, details: CaseDetails, idempotency_key: str | None = None
    ) -> CaseSummary:
        check_current(details.township, self.townships, self.abolished)
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
            referrals = await self._refer(tx, row, Stage.filing)
            if check.due:
                triggered = self._accountability(row, check)
                starts = [*starts, *triggered.starts]
                event_ids.append(await self._announce(tx, case_id, "accountability", triggered))
                referrals += await self._refer(tx, row, Stage.accountability)
            return CaseSummary(
                case_id=case_id,
                status=CaseStatus.filed,
                accountability_started=check.due,
                event_ids=event_ids,
                starts=starts,
                referrals=referrals,
            ).model_dump(mode="json")

        body = await once(self.store.transaction, "file_case", details, idempotency_key, write)
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
            answer = await self._step(tx, case_id, step, details, event_model)
            return answer.model_dump(mode="json")

        body = await once(
            self.store.transaction, f"{step}:{case_id}", details, idempotency_key, write
        )
        return CaseSummary.model_validate(body)

    async def _step(
        self,
        tx: RegistryTransaction,
        case_id: str,
        step: Step,
        details: BaseModel,
        event_model: type[Payload],
    ) -> CaseSummary:
        """One step under the case's lock: the case row, its record and event, the
        referrals it sends, and the accountability a correction may start late."""
        case = await tx.case_for_update(case_id)
        if case is None:
            raise NotFound(f"no case {case_id!r}")
        status = next_status(case.status, step)
        fields: dict[str, Any] = {"case_id": case_id, **details.model_dump()}
        updated = replace(case, status=status)
        accountability: AccountabilityCheck | None = None
        if isinstance(details, CorrectionDetails):
            corrected, changes, accountability = self._corrected(case, details)
            updated = replace(corrected, status=status)
            fields.update(changes)
        elif step in STARTED_BY_STEP:
            stage = STARTED_BY_STEP[step]
            fields["starts"] = decide(
                self.catalogue, [stage], stored_parcels(case), stored_facts(case)
            )
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
        referrals: list[SentReferral] = []
        if step in STARTED_BY_STEP:
            referrals += await self._refer(tx, updated, STARTED_BY_STEP[step])
        if accountability is not None:
            triggered = self._accountability(updated, accountability)
            starts.extend(triggered.starts)
            event_ids.append(await self._announce(tx, case_id, "accountability", triggered))
            referrals += await self._refer(tx, updated, Stage.accountability)
        return CaseSummary(
            case_id=case_id,
            status=status,
            accountability_started=updated.accountability_started_at is not None,
            event_ids=event_ids,
            starts=starts,
            ends=list(fields.get("ends", [])),
            referrals=referrals,
        )

    def _corrected(
        self, case: CaseRow, details: CorrectionDetails
    ) -> tuple[CaseRow, dict[str, Any], AccountabilityCheck | None]:
        """The case with its corrected parcels (and facts, where given); the measures the
        correction starts and ends; and the accountability it starts late, if now due."""
        before = (stored_parcels(case), stored_facts(case))
        facts = details.facts if details.facts is not None else before[1]
        reached = stages_reached(case.status, case.accountability_started_at is not None)
        change = correct(self.catalogue, reached, before, (details.parcels, facts))
        check = check_accountability(details.parcels)
        starts = check if check.due and case.accountability_started_at is None else None
        corrected = replace(
            case,
            parcels=[parcel.model_dump(mode="json") for parcel in details.parcels],
            facts=case.facts if details.facts is None else facts.model_dump(mode="json"),
            basic_farmland_mu=check.basic_farmland_mu,
            cultivated_mu=check.cultivated_mu,
            accountability_started_at=(
                self.clock() if starts is not None else case.accountability_started_at
            ),
        )
        return corrected, {"starts": change.starts, "ends": change.ends}, starts

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
                signed=[sign_off_view(s) for s in signed],
                awaiting=[b for b in SigningBody if b not in {s.body for s in signed}],
            ).model_dump(mode="json")

        operation = f"restoration-sign-off:{case_id}:{body}:{signer.name}"
        answer = await once(self.store.transaction, operation, details, idempotency_key, write)
        return RestorationSummary.model_validate(answer)

    # --- queries ----------------------------------------------------------------------

    async def get_case(self, case_id: str) -> CaseView:
        found = await self.store.get_case(case_id)
        if found is None:
            raise NotFound(f"no case {case_id!r}")
        row, records = found
        return self.views.case(
            row,
            records,
            responses=await self.store.responses(case_id),
            sign_offs=await self.store.restoration_sign_offs(case_id),
            now=self.clock(),
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
            check_current(township, self.townships, self.abolished)
        rows = await self.store.list_cases(
            township=township, status=status, after=after, limit=limit
        )
        views = [case_view(row, []) for row in rows]
        return CasePage(cases=views, next_after=rows[-1].case_id if len(rows) == limit else None)

    # --- helpers ----------------------------------------------------------------------

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

    async def _refer(
        self, tx: RegistryTransaction, case: CaseRow, stage: Stage
    ) -> list[SentReferral]:
        """The referrals the catalogue sends at `stage` on this case, in this transaction."""
        return await send_automatic(
            tx.referrals(),
            self.catalogue,
            stage,
            case_id=case.case_id,
            township=case.township,
            land=occupied_classes(stored_parcels(case)),
            facts=established(stored_facts(case)),
            now=self.clock(),
            year=self._today().year,
        )

    def _accountability(self, case: CaseRow, check: AccountabilityCheck) -> AccountabilityTriggered:
        """Seed §四(五), with the accountability measures the case's facts start."""
        return AccountabilityTriggered(
            case_id=case.case_id,
            township=case.township,
            basic_farmland_mu=check.basic_farmland_mu,
            cultivated_mu=check.cultivated_mu,
            rule=check.rule,
            starts=decide(
                self.catalogue, [Stage.accountability], stored_parcels(case), stored_facts(case)
            ),
        )

    def _today(self) -> date:
        return city_day(self.clock(), self.timezone)

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


def _reporter(principal: Principal) -> dict[str, str | None]:
    """Who reported a clue, from the token: its name and role, and the body or township
    it acts for."""
    return {
        "name": principal.name,
        "role": principal.role.value,
        "body": acting_body(principal),
        "township": principal.township,
    }
