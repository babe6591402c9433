"""The registry's ports: what its handlers need from storage.

The Postgres and Kafka adapters implement these; handlers never import a driver.
"""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from events.authorities import NATURAL_RESOURCES
from events.decisions import UNRECORDED_FACTS
from events.models import CaseFacts, Parcel
from services.audit.domain import AuditEntry
from services.feedback.status import ResponseRow
from services.idempotency import IdempotencyKeys
from services.outbox.ports import OutgoingEvent
from services.referrals.ports import ReferralTransaction
from services.registry.domain import SIGN_OFF_BASIS, CaseStatus, SignOff


@dataclass(frozen=True)
class CaseRow:
    case_id: str
    township: str
    status: CaseStatus
    subject: dict[str, str]
    parcels: list[dict[str, str]]
    basic_farmland_mu: Decimal
    cultivated_mu: Decimal
    violation_kind: str
    source: str
    found_on: Any
    clue_id: str | None
    accountability_started_at: datetime | None
    facts: dict[str, Any] | None = None  # CaseFacts as JSON; None for a case filed before them
    filed_at: datetime | None = None
    updated_at: datetime | None = None


def stored_parcels(case: CaseRow) -> list[Parcel]:
    return [Parcel.model_validate(parcel) for parcel in case.parcels]


def stored_facts(case: CaseRow) -> CaseFacts:
    """The stored facts; a case filed before facts were recorded is decided on none."""
    return UNRECORDED_FACTS if case.facts is None else CaseFacts.model_validate(case.facts)


@dataclass(frozen=True)
class CaseRecord:
    seq: int
    step: str
    event_id: str
    event_type: str
    data: dict[str, Any]
    recorded_at: datetime


def record_audit(case_id: str, step: str, event: OutgoingEvent, data: dict[str, Any]) -> AuditEntry:
    """The audit entry of a step the registry records on a case: its legal basis is the
    rule the step applied, if it names one."""
    return AuditEntry(
        actor=NATURAL_RESOURCES.code,
        action=step,
        case_id=case_id,
        reason=f"{event.event_type} {event.event_id}",
        legal_basis=str(data.get("rule", "")),
        data=data,
    )


def sign_off_data(sign_off: SignOff) -> dict[str, Any]:
    """A sign-off as its audit entries record it."""
    return {
        "body": sign_off.body.value,
        "officer": sign_off.officer,
        "verified_on": sign_off.verified_on.isoformat(),
    }


def voided_audit(case_id: str, sign_off: SignOff, reason: str) -> AuditEntry:
    """The audit entry of a sign-off withdrawn (void_sign_offs): the audit log keeps what
    the table no longer holds."""
    return AuditEntry(
        actor=NATURAL_RESOURCES.code,
        action="restoration sign-off voided",
        case_id=case_id,
        reason=reason,
        legal_basis=SIGN_OFF_BASIS[sign_off.body],
        data=sign_off_data(sign_off),
    )


class RegistryTransaction(IdempotencyKeys):
    """Everything one command writes, committed or rolled back together."""

    @abc.abstractmethod
    async def next_case_id(self, year: int) -> str: ...

    @abc.abstractmethod
    async def next_clue_id(self, day: date) -> str: ...

    @abc.abstractmethod
    async def insert_clue(self, clue: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    async def take_clue(self, clue_id: str, case_id: str) -> bool:
        """Link an unused clue to a case; False if it is unknown or already used."""

    @abc.abstractmethod
    async def insert_case(self, case: CaseRow) -> None: ...

    @abc.abstractmethod
    async def case_for_update(self, case_id: str) -> CaseRow | None: ...

    @abc.abstractmethod
    async def update_case(self, case: CaseRow) -> None: ...

    @abc.abstractmethod
    async def append_record(
        self, case_id: str, step: str, event: OutgoingEvent, data: dict[str, Any]
    ) -> None:
        """The case's next record, of the event the step publishes, and its audit entry
        (`record_audit`)."""

    @abc.abstractmethod
    async def enqueue(self, event: OutgoingEvent) -> None: ...

    @abc.abstractmethod
    async def restoration_sign_offs(self, case_id: str) -> list[SignOff]:
        """The sign-offs standing on the case's restoration (read under the case lock)."""

    @abc.abstractmethod
    async def add_sign_off(self, case_id: str, sign_off: SignOff) -> None:
        """Record one body's sign-off, replacing that body's earlier one (a corrected
        date), audited in the same transaction."""

    @abc.abstractmethod
    async def void_sign_offs(self, case_id: str, reason: str) -> list[SignOff]:
        """Withdraw the standing sign-offs (a new rectification is inspected anew), each
        audited with the reason; returns those withdrawn."""

    @abc.abstractmethod
    async def rectified_on(self, case_id: str) -> date | None:
        """The latest completion date among the case's rectifications, if any."""

    @abc.abstractmethod
    def referrals(self) -> ReferralTransaction:
        """The referrals' writes, in this same transaction (and audit chain)."""


class RegistryStore(abc.ABC):
    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[RegistryTransaction]: ...

    @abc.abstractmethod
    async def get_case(self, case_id: str) -> tuple[CaseRow, list[CaseRecord]] | None: ...

    @abc.abstractmethod
    async def responses(self, case_id: str) -> list[ResponseRow]: ...

    @abc.abstractmethod
    async def restoration_sign_offs(self, case_id: str) -> list[SignOff]: ...

    @abc.abstractmethod
    async def list_cases(
        self, *, township: str | None, status: CaseStatus | None, after: str | None, limit: int
    ) -> list[CaseRow]: ...
