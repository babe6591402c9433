"""What the referral handlers rely on from ReferralTransaction (inside the registry's
transactions) and ReferralReader."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from services.errors import DatabaseError
from services.referrals.domain import Referral, ReferralStatus
from services.referrals.ports import ReferralFilter, ReferralReader, ReferralStep
from tests.contracts.registry import YEAR, Boom, Registry, file

SENT_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Referrals:
    registry: Registry
    reader: ReferralReader


def referral(
    referral_id: str, case_id: str | None, kind: str = "discipline", **kw: object
) -> Referral:
    fields: dict[str, object] = {
        "referral_id": referral_id,
        "kind": kind,
        "case_id": case_id,
        "township": "duizhen",
        "sent_by": "natural_resources",
        "sent_by_officer": "王",
        "to": kw.pop("to", "discipline_inspection"),
        "automatic": False,
        "reason": "threshold",
        "file_summary": "案卷",
        "sent_at": SENT_AT,
        "answer_due_at": SENT_AT + timedelta(days=5),
    }
    return Referral(**{**fields, **kw})  # type: ignore[arg-type]


async def send(
    under: Referrals, case_id: str | None, kind: str = "discipline", **kw: object
) -> str:
    async with under.registry.store.transaction() as tx:
        referrals = tx.referrals()
        referral_id = await referrals.next_referral_id(YEAR)
        await referrals.insert(referral(referral_id, case_id, kind, **kw))
    return referral_id


async def a_sent_referral_reads_back_and_ids_increase(under: Referrals) -> None:
    case_id = await file(under.registry)
    first = await send(under, case_id)
    second = await send(under, case_id, "police")
    assert first.startswith(f"R-{YEAR}-") and second > first
    assert await under.reader.get(first) == referral(first, case_id)
    assert await under.reader.get("R-none") is None
    async with under.registry.store.transaction() as tx:
        on_case = await tx.referrals().referrals_on(case_id)
        assert [r.referral_id for r in on_case] == [first, second]
        assert await tx.referrals().case_township(case_id) == "duizhen"
        assert await tx.referrals().case_township("RL-none") is None


async def one_unanswered_referral_of_a_kind_per_case(under: Referrals) -> None:
    case_id = await file(under.registry)
    first = await send(under, case_id)
    with pytest.raises(DatabaseError):
        await send(under, case_id)
    async with under.registry.store.transaction() as tx:
        found = await tx.referrals().for_update(first)
        assert found is not None
        refused = replace(
            found,
            status=ReferralStatus.refused,
            refusal_reason="not ours",
            answered_at=SENT_AT,
            answered_by="李",
        )
        await tx.referrals().update(refused)
    again = await send(under, case_id)  # the first one is answered: a new one may go
    assert await under.reader.get(first) == refused
    assert again != first


async def a_step_is_recorded_in_the_case_history_and_the_audit_log(under: Referrals) -> None:
    case_id = await file(under.registry)
    referral_id = await send(under, case_id)
    async with under.registry.store.transaction() as tx:
        found = await tx.referrals().for_update(referral_id)
        assert found is not None
        await tx.referrals().record(
            ReferralStep(found, "referral_sent", "natural_resources", "§4", {"a": 1})
        )
    case = await under.registry.store.get_case(case_id)
    assert case is not None
    last = case[1][-1]
    assert (last.seq, last.step) == (2, "referral_sent")
    assert (last.event_id, last.event_type) == (f"{referral_id}:referral_sent", "referral.sent")
    assert ("referral_sent", case_id) in await under.registry.audit()


async def a_referral_in_a_failed_transaction_is_gone(under: Referrals) -> None:
    case_id = await file(under.registry)
    with pytest.raises(Boom):
        async with under.registry.store.transaction() as tx:
            referral_id = await tx.referrals().next_referral_id(YEAR)
            await tx.referrals().insert(referral(referral_id, case_id))
            raise Boom
    assert await under.reader.get(referral_id) is None
    assert await under.reader.find(ReferralFilter(case_id=case_id)) == []


async def find_filters_by_receiver_deadline_and_pages_by_id(under: Referrals) -> None:
    receiver = f"body-{uuid.uuid4().hex[:8]}"
    case_id = await file(under.registry)
    late = await send(under, case_id, "discipline", to=receiver)
    kept = await send(
        under, case_id, "police", to=receiver, answer_due_at=SENT_AT + timedelta(days=30)
    )
    other = await send(under, None, "audit_clue", to=receiver, sent_by="audit")
    found = await under.reader.find(ReferralFilter(to=receiver))
    assert [r.referral_id for r in found] == [late, kept, other]
    page = await under.reader.find(ReferralFilter(to=receiver, after=late, limit=1))
    assert [r.referral_id for r in page] == [kept]
    overdue = await under.reader.find(
        ReferralFilter(to=receiver, overdue_at=SENT_AT + timedelta(days=10))
    )
    assert [r.referral_id for r in overdue] == [late, other]
    reach = await under.reader.find(ReferralFilter(to=receiver, on_cases_or_sent_by="police"))
    assert [r.referral_id for r in reach] == [late, kept]  # not the township one of audit
    refused = await under.reader.find(ReferralFilter(to=receiver, status=ReferralStatus.refused))
    assert refused == []


CHECKS = [
    a_sent_referral_reads_back_and_ids_increase,
    one_unanswered_referral_of_a_kind_per_case,
    a_step_is_recorded_in_the_case_history_and_the_audit_log,
    a_referral_in_a_failed_transaction_is_gone,
    find_filters_by_receiver_deadline_and_pages_by_id,
]
