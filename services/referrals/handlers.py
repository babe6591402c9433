"""The referral commands and queries: who may, the domain's rules, one transaction each.

Every command runs in the registry's transaction (its idempotency keys, its audit chain):
the referral row, the case's record of the step and the audit entry commit together, and
a retry with the same Idempotency-Key returns the first answer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import KW_ONLY, asdict, dataclass
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from events.catalogue import Catalogue, Fact, ReferralKind, Stage
from events.land import LandClass
from events.models import Id, Name, NonEmptyText, Text
from services.access import Principal, Role
from services.city_time import CityClock
from services.errors import InvalidInput
from services.idempotency import once
from services.referrals.domain import (
    PENDING,
    Deadline,
    NoSuchReferral,
    NotAllowed,
    Referral,
    ReferralStatus,
    accept,
    acting_body,
    answered_late,
    automatic_referrals,
    automatic_sender,
    check_addressed,
    check_not_pending,
    check_receiver,
    check_sender,
    may_read,
    overdue,
    record_outcome,
    refuse,
    send,
)
from services.referrals.ports import (
    ReferralFilter,
    ReferralReader,
    ReferralStep,
    ReferralTransaction,
)
from services.registry.ports import RegistryStore, RegistryTransaction

Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
AUTOMATIC = "automatic"  # the officer named on a referral the registry sent by itself


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class SendReferral(_Body):
    """A referral sent by hand; who sends it, and for which body, comes from the token."""

    kind: Code = Field(description="A referral kind of the catalogue, e.g. criminal.")
    case_id: Id | None = Field(default=None, description="Required, except for audit_clue.")
    township: Name | None = Field(default=None, description="For audit_clue: the township.")
    reason: NonEmptyText = Field(description="Why it is referred (移送理由).")
    file_summary: Text = Field(default="", description="What the case file sent contains.")


class Acceptance(_Body):
    reference: Reference = Field(description="The receiver's own number (受理/立案号).")


class Refusal(_Body):
    reason: NonEmptyText


class Outcome(_Body):
    outcome: Code = Field(description="One of the kind's outcomes, e.g. case_opened.")
    decided_on: date
    note: Text = ""


class ReferralView(BaseModel):
    referral_id: str
    kind: str
    name_zh: str
    legal_basis: str
    case_id: str | None
    township: str
    sent_by: str
    sent_by_officer: str
    to: str
    automatic: bool
    reason: str
    file_summary: str
    sent_at: datetime
    answer_due_at: datetime
    status: ReferralStatus
    answered_at: datetime | None
    answered_by: str | None
    answered_late: bool
    reference: str | None
    refusal_reason: str | None
    outcome_due_at: datetime | None
    outcome: str | None
    outcome_on: date | None
    outcome_note: str | None
    outcome_at: datetime | None
    outcome_by: str | None
    overdue: bool
    overdue_for: Deadline | None


class ReferralQuery(BaseModel):
    """GET /v1/referrals: which referrals a caller asks to list, and the page."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    to: str | None = Field(None, description="A receiving body's code, or me.")
    sent_by: str | None = Field(None, alias="from", description="A sending body's code, or me.")
    case: str | None = Field(None, description="Only this case's referrals.")
    status: ReferralStatus | None = None
    overdue: bool = Field(False, description="Only those past a deadline.")
    after: str | None = Field(None, description="next_after of the last page")
    limit: int = Field(50, ge=1, le=500)


class ReferralPage(BaseModel):
    referrals: list[ReferralView]
    next_after: str | None


class SentReferral(BaseModel):
    """A referral a case command sent automatically, as its answer lists it."""

    referral_id: str
    kind: str
    to: str
    answer_due_at: datetime


def view(referral: Referral, kind: ReferralKind | None, now: datetime) -> ReferralView:
    """Every stored field of the referral, with its kind's names and what its deadlines
    make of it."""
    late = overdue(referral, now)
    return ReferralView(
        **asdict(referral),
        name_zh=kind.name_zh if kind else referral.kind,
        legal_basis=kind.legal_basis if kind else "",
        answered_late=answered_late(referral),
        overdue=late is not None,
        overdue_for=late,
    )


def _sent_step(referral: Referral, kind: ReferralKind) -> ReferralStep:
    """The sending, recorded as taken by the sending body."""
    data = {
        "referral_id": referral.referral_id,
        "kind": referral.kind,
        "sent_by": referral.sent_by,
        "officer": referral.sent_by_officer,
        "to": referral.to,
        "automatic": referral.automatic,
        "reason": referral.reason,
        "answer_due_at": referral.answer_due_at.isoformat(),
    }
    return ReferralStep(referral, "referral_sent", referral.sent_by, kind.legal_basis, data)


async def send_automatic(
    tx: ReferralTransaction,
    catalogue: Catalogue,
    stage: Stage,
    *,
    case_id: str,
    township: str,
    land: frozenset[LandClass],
    facts: frozenset[Fact],
    now: datetime,
    year: int,
) -> list[SentReferral]:
    """Send, inside the caller's transaction (the case already locked by it), every kind
    the catalogue sends at `stage` whose condition the case meets, once per case: a kind
    still pending on the case is not sent again."""
    pending = [r.kind for r in await tx.referrals_on(case_id) if r.status in PENDING]
    sent = []
    for automatic in automatic_referrals(catalogue, stage, land, facts, pending):
        kind = automatic.kind
        referral = send(
            kind,
            referral_id=await tx.next_referral_id(year),
            case_id=case_id,
            township=township,
            sent_by=automatic_sender(kind),
            officer=AUTOMATIC,
            reason=f"sent automatically at {stage}: {automatic.rule} (seed §{kind.seed_section})",
            file_summary="",
            at=now,
            automatic=True,
        )
        await tx.insert(referral)
        await tx.record(_sent_step(referral, kind))
        sent.append(_sent(referral))
    return sent


def _sent(referral: Referral) -> SentReferral:
    return SentReferral(
        referral_id=referral.referral_id,
        kind=referral.kind,
        to=referral.to,
        answer_due_at=referral.answer_due_at,
    )


@dataclass(eq=False)
class Referrals(CityClock):
    """The service behind /v1/referrals: each step checked against the caller's body."""

    store: RegistryStore
    reader: ReferralReader
    _: KW_ONLY
    catalogue: Catalogue
    townships: Collection[str]

    # --- commands ---------------------------------------------------------------------

    async def send(
        self, principal: Principal, details: SendReferral, key: str | None = None
    ) -> ReferralView:
        kind = self._kind(details.kind)
        body = check_sender(principal, kind)
        check_addressed(kind, details.case_id, details.township)
        if details.township is not None and details.township not in self.townships:
            raise InvalidInput("township", f"unknown township {details.township!r}")

        async def write(tx: RegistryTransaction) -> dict[str, Any]:
            referrals = tx.referrals()
            now = self.clock()
            township = details.township
            if details.case_id is not None:
                township = await referrals.case_township(details.case_id)
                if township is None:
                    raise NoSuchReferral(f"no case {details.case_id!r}")
                check_not_pending(await referrals.referrals_on(details.case_id), kind.code)
            assert township is not None  # check_addressed: a case's, or the one named
            referral = send(
                kind,
                referral_id=await referrals.next_referral_id(self.today().year),
                case_id=details.case_id,
                township=township,
                sent_by=body,
                officer=principal.name,
                reason=details.reason,
                file_summary=details.file_summary,
                at=now,
            )
            await referrals.insert(referral)
            await referrals.record(_sent_step(referral, kind))
            return view(referral, kind, now).model_dump(mode="json")

        answer = await once(
            self.store.transaction, f"send-referral:{principal.name}", details, key, write
        )
        return ReferralView.model_validate(answer)

    async def accept(
        self, principal: Principal, referral_id: str, details: Acceptance, key: str | None = None
    ) -> ReferralView:
        def step(referral: Referral, kind: ReferralKind, now: datetime) -> Referral:
            return accept(referral, kind, reference=details.reference, by=principal.name, at=now)

        return await self._answer(
            principal, referral_id, step="acceptance", details=details, key=key, change=step
        )

    async def refuse(
        self, principal: Principal, referral_id: str, details: Refusal, key: str | None = None
    ) -> ReferralView:
        def step(referral: Referral, kind: ReferralKind, now: datetime) -> Referral:
            return refuse(referral, reason=details.reason, by=principal.name, at=now)

        return await self._answer(
            principal, referral_id, step="refusal", details=details, key=key, change=step
        )

    async def record_outcome(
        self, principal: Principal, referral_id: str, details: Outcome, key: str | None = None
    ) -> ReferralView:
        if details.decided_on > self.today():
            raise InvalidInput(
                "decided_on", f"{details.decided_on} is in the future (today is {self.today()})"
            )

        def step(referral: Referral, kind: ReferralKind, now: datetime) -> Referral:
            return record_outcome(
                referral,
                kind,
                outcome=details.outcome,
                decided_on=details.decided_on,
                note=details.note,
                by=principal.name,
                at=now,
            )

        return await self._answer(
            principal, referral_id, step="outcome", details=details, key=key, change=step
        )

    # --- queries ----------------------------------------------------------------------

    async def get(self, principal: Principal, referral_id: str) -> ReferralView:
        referral = await self.reader.get(referral_id)
        if referral is None or not may_read(principal, referral):
            # Not told apart: a body learns nothing of referrals between others.
            raise NoSuchReferral(f"no referral {referral_id!r} that {principal.name} may read")
        return view(referral, self._kind_or_none(referral.kind), self.clock())

    async def find(self, principal: Principal, query: ReferralQuery) -> ReferralPage:
        """A receiver lists what was sent to it (`to=me`), a sender what it sent
        (`from=me`); operators everything; case officers those on cases."""
        own = acting_body(principal)
        to, sent_by = _me(query.to, own, "to"), _me(query.sent_by, own, "from")
        scope = None
        if principal.role is Role.department:
            if to is None and sent_by is None:
                to = own
            if own not in (to, sent_by):
                raise NotAllowed(
                    f"{principal.department} lists only referrals sent to it (to=me) or by it "
                    "(from=me)"
                )
        elif principal.role is Role.case_officer:
            scope = own
        elif principal.role is not Role.operator:
            raise NotAllowed(f"a {principal.role} reads no referrals")
        now = self.clock()
        where = ReferralFilter(
            to=to,
            sent_by=sent_by,
            case_id=query.case,
            status=query.status,
            overdue_at=now if query.overdue else None,
            on_cases_or_sent_by=scope,
            after=query.after,
            limit=query.limit,
        )
        found = await self.reader.find(where)
        return ReferralPage(
            referrals=[view(r, self._kind_or_none(r.kind), now) for r in found],
            next_after=found[-1].referral_id if len(found) == query.limit else None,
        )

    # --- helpers ----------------------------------------------------------------------

    async def _answer(
        self,
        principal: Principal,
        referral_id: str,
        *,
        step: str,
        details: BaseModel,
        key: str | None,
        change: Callable[[Referral, ReferralKind, datetime], Referral],
    ) -> ReferralView:
        async def write(tx: RegistryTransaction) -> dict[str, Any]:
            referrals = tx.referrals()
            referral = await referrals.for_update(referral_id)
            if referral is None:
                raise NoSuchReferral(f"no referral {referral_id!r}")
            body = check_receiver(principal, referral)
            kind = self._kind(referral.kind)
            now = self.clock()
            changed = change(referral, kind, now)
            await referrals.update(changed)
            data = {
                "referral_id": referral_id,
                "kind": kind.code,
                "by": body,
                "officer": principal.name,
                **details.model_dump(mode="json"),
            }
            await referrals.record(
                ReferralStep(changed, f"referral_{step}", body, kind.legal_basis, data)
            )
            return view(changed, kind, now).model_dump(mode="json")

        operation = f"referral-{step}:{referral_id}:{principal.name}"
        answer = await once(self.store.transaction, operation, details, key, write)
        return ReferralView.model_validate(answer)

    def _kind(self, code: str) -> ReferralKind:
        found = self._kind_or_none(code)
        if found is None:
            known = ", ".join(kind.code for kind in self.catalogue.referrals)
            raise InvalidInput("kind", f"unknown referral kind {code!r}; known: {known}")
        return found

    def _kind_or_none(self, code: str) -> ReferralKind | None:
        return next((kind for kind in self.catalogue.referrals if kind.code == code), None)


def _me(value: str | None, own: str | None, field: str) -> str | None:
    """`me` is the caller's own body (a case officer's is natural_resources)."""
    if value != "me":
        return value
    if own is None:
        raise InvalidInput(field, "'me' needs a token that acts for a body")
    return own
