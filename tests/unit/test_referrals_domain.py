"""Referrals as workflows: the state machine, deadlines, overdue, automatic selection and who
may do what, on the real catalogue, without I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from events.catalogue import Fact, ReferralKind, Stage, load_catalogue
from events.land import LandClass
from services.access import Principal, Role
from services.errors import InvalidInput
from services.referrals.domain import (
    AlreadyPending,
    Deadline,
    IllegalReferralStep,
    NotAllowed,
    Referral,
    ReferralStatus,
    accept,
    answered_late,
    automatic_referrals,
    check_not_pending,
    check_receiver,
    check_sender,
    clue_refusal,
    may_read,
    overdue,
    record_outcome,
    refuse,
    send,
)

CATALOGUE = load_catalogue()
CRIMINAL = CATALOGUE.referral("criminal")
COURT = CATALOGUE.referral("compulsory_enforcement")
AUDIT = CATALOGUE.referral("audit_clue")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FARMLAND = frozenset({LandClass.permanent_basic_farmland})

OFFICER = Principal("officer", Role.case_officer)
POLICE = Principal("police", Role.department, "public_security")
COURT_CLERK = Principal("court", Role.department, "court")
HOUSING = Principal("housing", Role.department, "housing")
OPERATOR = Principal("op", Role.operator)
SUBSCRIBER = Principal("bank", Role.subscriber)
PATROL = Principal("patrol-1", Role.village_patrol, township="duizhen")


# What a case officer fills in to send a referral; each test changes only what it is about.
SENDING: dict[str, Any] = {
    "referral_id": "R-2026-000001",
    "case_id": "RL-2026-000001",
    "township": "duizhen",
    "sent_by": "natural_resources",
    "officer": "officer",
    "reason": "涉嫌非法占用农用地罪",
    "file_summary": "案卷一册",
    "at": T0,
}


def sending(kind: ReferralKind = CRIMINAL, **changes: Any) -> Referral:
    """`kind` sent with the `SENDING` form, as changed by `changes`."""
    return send(kind, **{**SENDING, **changes})


def criminal(at: datetime = T0) -> Referral:
    return sending(at=at)


def answering(accepted: Referral, **changes: Any) -> Referral:
    """The criminal referral `accepted` answered "case_opened" on 3 November, as changed."""
    answer: dict[str, Any] = {
        "outcome": "case_opened",
        "decided_on": date(2026, 11, 3),
        "note": "",
        "by": "p",
        "at": T0,
    }
    return record_outcome(accepted, CRIMINAL, **{**answer, **changes})


def test_a_referral_is_accepted_then_answered_with_deadlines_from_the_catalogue() -> None:
    sent = criminal()
    assert sent.status is ReferralStatus.sent and sent.to == "public_security"
    assert sent.answer_due_at == T0 + timedelta(hours=CRIMINAL.answer_within_hours)
    at = T0 + timedelta(hours=10)
    accepted = accept(sent, CRIMINAL, reference=" 孝公立字〔2026〕88号 ", by="police", at=at)
    assert accepted.status is ReferralStatus.accepted
    assert accepted.reference == "孝公立字〔2026〕88号"
    assert accepted.outcome_due_at == at + timedelta(days=CRIMINAL.outcome_within_days)
    done = answering(
        accepted,
        decided_on=date(2026, 11, 5),
        note="立案侦查",
        by="police",
        at=at + timedelta(days=3),
    )
    assert done.status is ReferralStatus.answered and done.outcome == "case_opened"
    assert not answered_late(done)


def test_steps_out_of_order_are_refused_naming_both_states() -> None:
    sent = criminal()
    with pytest.raises(IllegalReferralStep, match="is sent: outcome needs it accepted"):
        answering(sent)
    accepted = accept(sent, CRIMINAL, reference="A-1", by="p", at=T0)
    with pytest.raises(IllegalReferralStep, match="is accepted: acceptance needs it sent"):
        accept(accepted, CRIMINAL, reference="A-2", by="p", at=T0)
    with pytest.raises(IllegalReferralStep, match="is accepted: refusal needs it sent"):
        refuse(accepted, reason="late", by="p", at=T0)
    refused = refuse(sent, reason="不属于本机关管辖", by="p", at=T0)
    assert refused.status is ReferralStatus.refused
    assert refused.refusal_reason == "不属于本机关管辖"
    with pytest.raises(IllegalReferralStep, match="is refused"):
        accept(refused, CRIMINAL, reference="A-3", by="p", at=T0)


def test_bad_answers_name_the_field() -> None:
    sent = criminal()
    with pytest.raises(InvalidInput) as empty:
        accept(sent, CRIMINAL, reference="   ", by="p", at=T0)
    assert empty.value.field == "reference"
    with pytest.raises(InvalidInput) as no_reason:
        refuse(sent, reason=" ", by="p", at=T0)
    assert no_reason.value.field == "reason"
    accepted = accept(sent, CRIMINAL, reference="A-1", by="p", at=T0)
    with pytest.raises(InvalidInput) as wrong:
        answering(accepted, outcome="enforcement_granted")
    assert wrong.value.field == "outcome"
    assert "case_opened, not_opened" in wrong.value.reason
    with pytest.raises(InvalidInput) as early:
        answering(accepted, decided_on=date(2026, 10, 1))
    assert early.value.field == "decided_on"


def test_overdue_names_the_deadline_missed() -> None:
    sent = criminal()
    assert overdue(sent, sent.answer_due_at) is None  # due at that instant, not yet late
    assert overdue(sent, sent.answer_due_at + timedelta(seconds=1)) is Deadline.answer
    late_at = sent.answer_due_at + timedelta(hours=1)
    accepted = accept(sent, CRIMINAL, reference="A-1", by="p", at=late_at)
    assert answered_late(accepted)
    assert overdue(accepted, late_at) is None
    assert accepted.outcome_due_at is not None
    assert overdue(accepted, accepted.outcome_due_at + timedelta(days=1)) is Deadline.outcome
    refused = refuse(sent, reason="no", by="p", at=T0)
    assert overdue(refused, T0 + timedelta(days=365)) is None


def test_the_threshold_sends_the_accountability_kinds_on_farmland_only() -> None:
    sent = automatic_referrals(CATALOGUE, Stage.accountability, FARMLAND, frozenset())
    assert [a.kind.code for a in sent] == ["criminal", "discipline", "major_case_report"]
    assert {a.kind.to for a in sent} == {"public_security", "discipline", "city_government"}
    construction = frozenset({LandClass.construction})
    assert automatic_referrals(CATALOGUE, Stage.accountability, construction, frozenset()) == []
    pending = automatic_referrals(
        CATALOGUE, Stage.accountability, FARMLAND, frozenset({Fact.works_started}), ["criminal"]
    )
    assert [a.kind.code for a in pending] == ["discipline", "major_case_report"]
    # kinds sent only by hand are never automatic
    by_hand = {
        a.kind.code
        for stage in Stage
        for a in automatic_referrals(CATALOGUE, stage, FARMLAND, frozenset(Fact))
    }
    assert not by_hand & {"compulsory_enforcement", "unpermitted_construction", "audit_clue"}


def test_one_pending_referral_of_a_kind_per_case() -> None:
    sent = criminal()
    with pytest.raises(AlreadyPending, match="already has a criminal referral sent"):
        check_not_pending([sent], "criminal")
    check_not_pending([sent], "discipline")
    check_not_pending([refuse(sent, reason="补充证据后再移送", by="p", at=T0)], "criminal")


def test_who_sends_answers_and_reads() -> None:
    assert check_sender(OFFICER, COURT) == "natural_resources"
    assert check_sender(HOUSING, CATALOGUE.referral("unpermitted_construction")) == "housing"
    assert check_sender(POLICE, CATALOGUE.referral("prosecution")) == "public_security"
    with pytest.raises(NotAllowed, match="sent by natural_resources, not by housing"):
        check_sender(HOUSING, COURT)
    with pytest.raises(NotAllowed, match="not by this role"):
        check_sender(PATROL, CRIMINAL)
    application = sending(COURT, referral_id="R-2026-000002", officer="o", reason="申请强制执行")
    assert check_receiver(COURT_CLERK, application) == "court"
    with pytest.raises(NotAllowed, match="answered by court only, not by public_security"):
        check_receiver(POLICE, application)
    with pytest.raises(NotAllowed):
        check_receiver(OFFICER, application)
    assert may_read(OPERATOR, application) and may_read(OFFICER, application)
    assert may_read(COURT_CLERK, application) and not may_read(POLICE, application)
    assert not may_read(SUBSCRIBER, application)


def test_an_audit_clue_names_a_township_and_no_case() -> None:
    clue = sending(
        AUDIT,
        referral_id="R-2026-000003",
        case_id=None,
        sent_by="audit",
        officer="auditor",
        reason="耕地保护责任落实不到位",
        file_summary="",
    )
    assert clue.to == "discipline" and clue.case_id is None
    assert not may_read(OFFICER, clue)  # between audit and discipline, not on a case
    with pytest.raises(InvalidInput) as on_case:
        sending(AUDIT, sent_by="audit")
    assert on_case.value.field == "case_id"
    with pytest.raises(InvalidInput) as no_case:
        sending(CRIMINAL, case_id=None)
    assert no_case.value.field == "case_id"


def test_a_patrol_reports_clues_in_its_own_township_only() -> None:
    assert clue_refusal(PATROL, "duizhen") is None
    chief = Principal("chief", Role.field_chief, township="xiaxiangzhen")
    refused = clue_refusal(chief, "duizhen")
    assert refused is not None and refused.field == "township"
    assert "xiaxiangzhen only, not in duizhen" in refused.reason
    assert clue_refusal(HOUSING, "duizhen") is None and clue_refusal(OFFICER, "x") is None
    assert clue_refusal(SUBSCRIBER, "duizhen") is not None
