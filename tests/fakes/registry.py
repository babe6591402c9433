"""An in-memory RegistryStore (with the referrals written in its transactions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from services.audit.domain import AuditEntry
from services.feedback.status import ResponseRow
from services.idempotency import StoredResponse
from services.outbox.ports import OutgoingEvent
from services.referrals.domain import Referral, ReferralStatus
from services.referrals.ports import (
    ReferralFilter,
    ReferralReader,
    ReferralStep,
    ReferralTransaction,
)
from services.registry.domain import SIGN_OFF_BASIS, CaseStatus, SignOff
from services.registry.ports import (
    CaseRecord,
    CaseRow,
    RegistryStore,
    RegistryTransaction,
    record_audit,
    sign_off_data,
    voided_audit,
)
from tests.fakes.snapshots import (
    Committed,
    PgSequence,
    as_json,
    enqueue_once,
    foreign_key,
    unique,
)

PENDING = (ReferralStatus.sent, ReferralStatus.accepted)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RegistryState:
    """The registry's tables; `outbox` in position order, `audit` in append order."""

    clues: dict[str, dict[str, Any]] = field(default_factory=dict)
    cases: dict[str, CaseRow] = field(default_factory=dict)
    records: dict[str, list[CaseRecord]] = field(default_factory=dict)
    outbox: list[OutgoingEvent] = field(default_factory=list)
    keys: dict[str, StoredResponse] = field(default_factory=dict)
    sign_offs: dict[str, list[SignOff]] = field(default_factory=dict)  # in signing order
    referrals: dict[str, Referral] = field(default_factory=dict)
    responses: list[ResponseRow] = field(default_factory=list)  # the tracker's; seeded
    audit: list[AuditEntry] = field(default_factory=list)

    def record(self, case_id: str, step: str, event_id: str, event_type: str, data: Any) -> None:
        unique("case_records.event_id", event_id, self.has_record(event_id))
        records = self.records.setdefault(case_id, [])
        seq = len(records) + 1
        records.append(CaseRecord(seq, step, event_id, event_type, as_json(data), _now()))

    def has_record(self, event_id: str) -> bool:
        return any(r.event_id == event_id for rs in self.records.values() for r in rs)


class FakeReferralTransaction(ReferralTransaction):
    def __init__(self, state: RegistryState, numbers: PgSequence) -> None:
        self.state = state
        self.numbers = numbers

    async def next_referral_id(self, year: int) -> str:
        return f"R-{year}-{self.numbers.next():06d}"

    async def case_township(self, case_id: str) -> str | None:
        case = self.state.cases.get(case_id)
        return None if case is None else case.township

    async def referrals_on(self, case_id: str) -> list[Referral]:
        found = [r for r in self.state.referrals.values() if r.case_id == case_id]
        return sorted(found, key=lambda r: r.referral_id)

    async def insert(self, referral: Referral) -> None:
        unique("referrals", referral.referral_id, referral.referral_id in self.state.referrals)
        self._check(referral)
        self.state.referrals[referral.referral_id] = referral

    async def for_update(self, referral_id: str) -> Referral | None:
        return self.state.referrals.get(referral_id)

    async def update(self, referral: Referral) -> None:
        if referral.referral_id in self.state.referrals:  # an UPDATE of no row changes nothing
            self._check(referral)
            self.state.referrals[referral.referral_id] = referral

    def _check(self, referral: Referral) -> None:
        """referrals_one_pending: one unanswered referral of a kind per case."""
        if referral.case_id is None or referral.status not in PENDING:
            return
        unique(
            "referrals_one_pending",
            (referral.case_id, referral.kind),
            any(
                other.referral_id != referral.referral_id
                and (other.case_id, other.kind) == (referral.case_id, referral.kind)
                and other.status in PENDING
                for other in self.state.referrals.values()
            ),
        )

    async def record(self, step: ReferralStep) -> None:
        case_id = step.referral.case_id
        if case_id is not None:
            self.state.record(case_id, step.step, *step.case_record(), step.data)
        self.state.audit.append(step.audit())


class FakeRegistryTransaction(RegistryTransaction):
    def __init__(self, state: RegistryState, store: FakeRegistryStore) -> None:
        self.state = state
        self.store = store

    async def claim_idempotency_key(self, key: str) -> StoredResponse | None:
        return self.state.keys.get(key)

    async def save_idempotent_response(self, key: str, response: StoredResponse) -> None:
        unique("idempotency_keys", key, key in self.state.keys)
        self.state.keys[key] = replace(response, body=as_json(response.body))

    async def next_case_id(self, year: int) -> str:
        return f"RL-{year}-{self.store.case_numbers.next():06d}"

    async def next_clue_id(self, day: date) -> str:
        return f"CL-{day:%Y%m%d}-{self.store.clue_numbers.next():06d}"

    async def insert_clue(self, clue: dict[str, Any]) -> None:
        unique("clues", clue["clue_id"], clue["clue_id"] in self.state.clues)
        self.state.clues[clue["clue_id"]] = {**clue, "case_id": None}

    async def take_clue(self, clue_id: str, case_id: str) -> bool:
        clue = self.state.clues.get(clue_id)
        if clue is None or clue["case_id"] is not None:
            return False
        clue["case_id"] = case_id
        return True

    async def insert_case(self, case: CaseRow) -> None:
        unique("cases", case.case_id, case.case_id in self.state.cases)
        now = _now()
        self.state.cases[case.case_id] = replace(
            case,
            parcels=as_json(case.parcels),
            facts=as_json(case.facts),
            filed_at=now,
            updated_at=now,
        )

    async def case_for_update(self, case_id: str) -> CaseRow | None:
        return self.state.cases.get(case_id)

    async def update_case(self, case: CaseRow) -> None:
        old = self.state.cases.get(case.case_id)
        if old is None:
            return
        self.state.cases[case.case_id] = replace(  # only the columns the adapter updates
            old,
            status=case.status,
            parcels=as_json(case.parcels),
            basic_farmland_mu=case.basic_farmland_mu,
            cultivated_mu=case.cultivated_mu,
            accountability_started_at=case.accountability_started_at,
            facts=as_json(case.facts),
            updated_at=_now(),
        )

    async def append_record(
        self, case_id: str, step: str, event: OutgoingEvent, data: dict[str, Any]
    ) -> None:
        foreign_key("cases", case_id, case_id in self.state.cases)
        self.state.record(case_id, step, event.event_id, event.event_type, data)
        self.state.audit.append(record_audit(case_id, step, event, data))

    async def enqueue(self, event: OutgoingEvent) -> None:
        enqueue_once(self.state.outbox, [event])

    async def restoration_sign_offs(self, case_id: str) -> list[SignOff]:
        return list(self.state.sign_offs.get(case_id, []))

    async def add_sign_off(self, case_id: str, sign_off: SignOff) -> None:
        foreign_key("cases", case_id, case_id in self.state.cases)
        standing = [s for s in self.state.sign_offs.get(case_id, []) if s.body != sign_off.body]
        self.state.sign_offs[case_id] = [*standing, sign_off]  # signed_at = now(): last
        self.state.audit.append(
            AuditEntry(
                actor=sign_off.body.value,
                action="restoration sign-off",
                case_id=case_id,
                reason=f"signed by {sign_off.officer}, verified on {sign_off.verified_on}",
                legal_basis=SIGN_OFF_BASIS[sign_off.body],
                data=sign_off_data(sign_off),
            )
        )

    async def void_sign_offs(self, case_id: str, reason: str) -> list[SignOff]:
        voided = self.state.sign_offs.pop(case_id, [])
        self.state.audit.extend(voided_audit(case_id, sign_off, reason) for sign_off in voided)
        return voided

    async def rectified_on(self, case_id: str) -> date | None:
        days = [
            date.fromisoformat(r.data["completed_on"])
            for r in self.state.records.get(case_id, [])
            if r.step == "rectification" and r.data.get("completed_on")
        ]
        return max(days, default=None)

    def referrals(self) -> FakeReferralTransaction:
        return FakeReferralTransaction(self.state, self.store.referral_numbers)


class FakeRegistryStore(Committed[RegistryState], RegistryStore):
    def __init__(self) -> None:
        super().__init__(RegistryState())
        self.case_numbers = PgSequence()
        self.clue_numbers = PgSequence()
        self.referral_numbers = PgSequence()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[RegistryTransaction]:
        async with self.tables.begin() as work:
            yield FakeRegistryTransaction(work, self)

    async def get_case(self, case_id: str) -> tuple[CaseRow, list[CaseRecord]] | None:
        case = self.state.cases.get(case_id)
        if case is None:
            return None
        return case, list(self.state.records.get(case_id, []))

    async def responses(self, case_id: str) -> list[ResponseRow]:
        rows = [r for r in self.state.responses if r.case_id == case_id]
        return sorted(rows, key=lambda r: (r.department, r.measure, r.action))

    async def restoration_sign_offs(self, case_id: str) -> list[SignOff]:
        return list(self.state.sign_offs.get(case_id, []))

    async def list_cases(
        self, *, township: str | None, status: CaseStatus | None, after: str | None, limit: int
    ) -> list[CaseRow]:
        found = [
            case
            for case_id, case in sorted(self.state.cases.items())
            if (township is None or case.township == township)
            and (status is None or case.status == status)
            and (after is None or case_id > after)
        ]
        return found[:limit]


class FakeReferralReader(ReferralReader):
    """Reads the committed referrals of a FakeRegistryStore."""

    def __init__(self, store: FakeRegistryStore) -> None:
        self.store = store

    async def get(self, referral_id: str) -> Referral | None:
        return self.store.state.referrals.get(referral_id)

    async def find(self, where: ReferralFilter) -> list[Referral]:
        def overdue(r: Referral) -> bool:
            at = where.overdue_at
            if at is None:
                return True
            if r.status is ReferralStatus.sent:
                return r.answer_due_at < at
            return (
                r.status is ReferralStatus.accepted
                and r.outcome_due_at is not None
                and (r.outcome_due_at < at)
            )

        found = [
            r
            for referral_id, r in sorted(self.store.state.referrals.items())
            if (where.to is None or r.to == where.to)
            and (where.sent_by is None or r.sent_by == where.sent_by)
            and (where.case_id is None or r.case_id == where.case_id)
            and (where.status is None or r.status == where.status)
            and overdue(r)
            and (
                where.on_cases_or_sent_by is None
                or r.case_id is not None
                or r.sent_by == where.on_cases_or_sent_by
            )
            and (where.after is None or referral_id > where.after)
        ]
        return found[: where.limit]
