"""What the referral handlers need from storage; the asyncpg adapter implements it.

Referrals are written inside the registry's transaction (RegistryTransaction.referrals),
so a referral, the case's record of it and its audit entry commit together with whatever
else the command writes: the case filing whose threshold sends it, or nothing else.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.audit.domain import AuditEntry
from services.referrals.domain import Referral, ReferralStatus


@dataclass(frozen=True)
class ReferralStep:
    """A step taken on a referral (`step` names it, e.g. referral_sent): who took it,
    under which law, and what it carried."""

    referral: Referral
    step: str
    actor: str
    legal_basis: str
    data: dict[str, Any]

    def case_record(self) -> tuple[str, str]:
        """The (event id, event type) the step is recorded under in its case's history. Not
        a bus event (receivers answer over the API), so the id names the referral step."""
        referral_id, step = self.referral.referral_id, self.step
        return f"{referral_id}:{step}", f"referral.{step.removeprefix('referral_')}"

    def audit(self) -> AuditEntry:
        """The step's audit entry; a referral on no case is filed under its township."""
        referral = self.referral
        return AuditEntry(
            actor=self.actor,
            action=self.step,
            case_id=referral.case_id or f"township:{referral.township}",
            reason=f"{referral.kind} referral {referral.referral_id} to {referral.to}",
            legal_basis=self.legal_basis,
            data=self.data,
        )


class ReferralTransaction(abc.ABC):
    @abc.abstractmethod
    async def next_referral_id(self, year: int) -> str: ...

    @abc.abstractmethod
    async def case_township(self, case_id: str) -> str | None:
        """The case's township, the case locked for the rest of the transaction (so two
        senders of one kind serialise); None when there is no such case."""

    @abc.abstractmethod
    async def referrals_on(self, case_id: str) -> list[Referral]: ...

    @abc.abstractmethod
    async def insert(self, referral: Referral) -> None: ...

    @abc.abstractmethod
    async def for_update(self, referral_id: str) -> Referral | None: ...

    @abc.abstractmethod
    async def update(self, referral: Referral) -> None: ...

    @abc.abstractmethod
    async def record(self, step: ReferralStep) -> None:
        """The step in its case's history (under `step.case_record()`, when it is on a
        case) and in the audit log (`step.audit()`)."""


@dataclass(frozen=True)
class ReferralFilter:
    to: str | None = None
    sent_by: str | None = None
    case_id: str | None = None
    status: ReferralStatus | None = None
    overdue_at: datetime | None = None  # only those past a deadline at this time
    on_cases_or_sent_by: str | None = None  # a case officer's reach: on cases, or sent by
    after: str | None = None
    limit: int = 50


class ReferralReader(abc.ABC):
    @abc.abstractmethod
    async def get(self, referral_id: str) -> Referral | None: ...

    @abc.abstractmethod
    async def find(self, where: ReferralFilter) -> list[Referral]: ...
