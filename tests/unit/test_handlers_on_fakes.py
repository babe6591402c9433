"""The registry's, referrals' and townships' handlers on the in-memory stores: the command
path end to end (idempotency key, transaction, outbox, history) with no PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from events.catalogue import load_catalogue
from events.models import CaseDetails, CaseFiled
from events.signing import Signer
from services.errors import InvalidInput
from services.principals import Principal, Role
from services.referrals.handlers import Acceptance, Referrals, SendReferral
from services.registry.handlers import Registry
from services.townships.directory import load_townships
from services.townships.domain import TalkDecision, TalkRequest
from services.townships.handlers import Townships
from tests.fakes.registry import FakeReferralReader, FakeRegistryStore
from tests.fakes.townships import FakeTownshipStore
from tests.support import case_body

NOW = datetime(2026, 10, 13, 2, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
CATALOGUE = load_catalogue()
SIGNER = Signer.generate("natural_resources-test")
OFFICER = Principal("王", Role.case_officer)


def registry(store: FakeRegistryStore) -> Registry:
    return Registry(store, SIGNER, load_townships(), lambda: NOW, ZONE, catalogue=CATALOGUE)


def referrals(store: FakeRegistryStore) -> Referrals:
    return Referrals(
        store,
        FakeReferralReader(store),
        catalogue=CATALOGUE,
        townships=set(load_townships()),
        clock=lambda: NOW,
        timezone=ZONE,
    )


async def test_a_filed_case_is_stored_announced_once_and_replayed_under_its_key() -> None:
    store = FakeRegistryStore()
    details = CaseDetails.model_validate(case_body(("cultivated", "1")))

    first = await registry(store).file_case(details, "key-1")
    again = await registry(store).file_case(details, "key-1")

    assert again == first  # the stored answer, not a second case
    assert list(store.state.cases) == [first.case_id]
    filed = [e for e in store.state.outbox if e.event_type == CaseFiled.event_type]
    assert [e.event_id for e in filed] == first.event_ids[:1]
    assert filed[0].key == first.case_id
    assert filed[0].value is not None and first.case_id.encode() in filed[0].value
    view = await registry(store).get_case(first.case_id)
    assert [r["step"] for r in view.records] == ["filing"]
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        other = CaseDetails.model_validate(case_body(("cultivated", "2")))
        await registry(store).file_case(other, "key-1")
    assert len(store.state.cases) == 1


async def test_a_refused_filing_keeps_no_answer_under_its_key_and_spends_a_case_number() -> None:
    store = FakeRegistryStore()
    details = CaseDetails.model_validate(case_body(("cultivated", "1"), clue_id="CL-x"))

    with pytest.raises(InvalidInput, match="clue_id"):
        await registry(store).file_case(details, "key-2")

    assert store.state.cases == {} and store.state.outbox == [] and store.state.keys == {}
    kept = await registry(store).file_case(CaseDetails.model_validate(case_body()), "key-2")
    assert kept.case_id.endswith("000002")  # the sequence did not roll back


async def test_a_referral_is_sent_accepted_by_its_receiver_and_kept_in_the_case_history() -> None:
    store = FakeRegistryStore()
    case_id = (await registry(store).file_case(CaseDetails.model_validate(case_body()))).case_id
    service = referrals(store)
    ask = SendReferral(kind="compulsory_enforcement", case_id=case_id, reason="拒不拆除")

    sent = await service.send(OFFICER, ask, "send-1")
    assert await service.send(OFFICER, ask, "send-1") == sent
    court = Principal("法院", Role.department, department="court")
    accepted = await service.accept(court, sent.referral_id, Acceptance(reference="(2026)执1号"))

    assert accepted.status == "accepted"
    assert len(store.state.referrals) == 1
    steps = [r.step for r in store.state.records[case_id]]
    assert steps[0] == "filing" and len(steps) == 3  # sent and accepted recorded
    audited = [a.action for a in store.state.audit if sent.referral_id in a.reason]
    assert len(audited) == 2


async def test_a_township_talk_is_requested_once_per_key_and_decided() -> None:
    store = FakeTownshipStore()
    service = Townships(
        store, townships=load_townships(), aliases={}, timezone=ZONE, clock=lambda: NOW
    )
    city = Principal("市政府", Role.operator)
    request = TalkRequest(township="xinyi", reason="耕地流失")

    talk = await service.request_talk(request, city, "talk-1")
    assert await service.request_talk(request, city, "talk-1") == talk
    decision = TalkDecision(
        decision="approve", talk_on=date(2026, 10, 20), rectify_by=date(2026, 12, 31)
    )
    decided = await service.decide_talk(talk.talk_id, decision, city)

    assert list(store.state.talks) == [talk.talk_id]
    assert decided.status == "approved"
    assert store.state.talks[talk.talk_id].rectify_by == date(2026, 12, 31)
