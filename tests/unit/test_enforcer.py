"""Enforcer.handle against an in-memory store: blocks, lifts, signed acks, dead letters."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from events.authorities import NATURAL_RESOURCES, department_authority
from events.catalogue import load_catalogue
from events.codec import decode, encode_signed
from events.envelope import Envelope, encode, new_event, schema_uri
from events.models import (
    AccountabilityTriggered,
    CaseFiled,
    CaseFiledV1,
    CaseRevoked,
    DeadLetter,
    MeasureApplied,
    MeasureFailed,
    MeasureLifted,
    Payload,
    PenaltyDecided,
    RestorationVerified,
)
from events.signing import Signer, TrustedKey, TrustStore, sign
from events.topics import ACKNOWLEDGEMENTS, DEAD_LETTERS, VIOLATIONS
from services.departments.handlers import Enforcer, RawMessage
from services.departments.ports import (
    BatchWrites,
    Block,
    Consumed,
    DepartmentStore,
    DepartmentTransaction,
    KnownCase,
)
from services.outbox.ports import OutgoingEvent
from tests.support import case_body

NOW = datetime(2026, 10, 13, 9, 30, tzinfo=UTC)
NR_KEY = "natural_resources-test"


# --- an in-memory DepartmentStore ----------------------------------------------------


@dataclass
class MemoryState:
    consumed: dict[str, str] = field(default_factory=dict)
    cases: dict[str, KnownCase] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    outbox: list[OutgoingEvent] = field(default_factory=list)
    transactions: int = 0


class MemoryTransaction(DepartmentTransaction):
    def __init__(self, state: MemoryState) -> None:
        self.state = state
        self.pending: list[BatchWrites] = []
        self.claimed: dict[str, str] = {}

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        self.claimed = {e.event_id: e.event_type for e in events}
        for event_id in self.state.consumed.keys() & self.claimed.keys():
            del self.claimed[event_id]
        return set(self.claimed)

    async def known_cases(self, case_ids: Sequence[str]) -> dict[str, KnownCase]:
        return {c: self.state.cases[c] for c in case_ids if c in self.state.cases}

    async def active_blocks(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        wanted = set(case_ids)
        return {
            (b.measure, b.case_id)
            for b in self.state.blocks
            if b.case_id in wanted and b.lifted_at is None
        }

    async def write(self, writes: BatchWrites) -> None:
        self.pending.append(writes)

    def commit(self) -> None:
        state = self.state
        for event_id, event_type in self.claimed.items():
            assert event_id not in state.consumed, "event consumed twice"
            state.consumed[event_id] = event_type
        for writes in self.pending:
            for new in writes.cases:
                assert new.case.case_id not in state.cases, "case written twice"
                state.cases[new.case.case_id] = new.case
            for a in writes.applied:
                state.blocks.append(
                    Block(
                        a.measure,
                        a.case.case_id,
                        a.case.subject_kind,
                        a.case.subject_id,
                        a.case.subject_name,
                        a.legal_basis,
                        a.at,
                        None,
                        None,
                    )
                )
            for lift in writes.lifted:
                for index, block in enumerate(state.blocks):
                    if (block.measure, block.case_id, block.lifted_at) == (
                        lift.measure,
                        lift.case_id,
                        None,
                    ):
                        state.blocks[index] = replace(
                            block, lifted_at=lift.at, lift_reason=lift.reason
                        )
                        break
                else:
                    raise AssertionError(f"lifted a block never applied: {lift}")
            known = {e.event_id for e in state.outbox}
            for event in writes.outgoing:
                assert event.event_id not in known, "outgoing event id repeats"
                known.add(event.event_id)
                state.outbox.append(event)


class MemoryStore(DepartmentStore):
    def __init__(self) -> None:
        self.state = MemoryState()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DepartmentTransaction]:
        tx = MemoryTransaction(self.state)
        yield tx
        tx.commit()  # only reached when the block raised nothing
        self.state.transactions += 1

    async def blocks(self, *, subject_id: str | None, active_only: bool) -> list[Block]:
        return [
            b
            for b in self.state.blocks
            if (subject_id is None or b.subject_id == subject_id)
            and (not active_only or b.lifted_at is None)
        ]


# --- keys, events and an enforcer ----------------------------------------------------


@dataclass
class World:
    natural_resources: Signer
    department: Signer
    stranger: Signer
    trust: TrustStore
    department_trust: TrustStore  # what a reader of the department's events trusts
    offset: int = 0

    def message(self, value: bytes | None) -> RawMessage:
        self.offset += 1
        return RawMessage(VIOLATIONS.name, 0, self.offset, b"key", value)

    def event(self, payload: Payload, *, signer: Signer | None = None, source: str = "") -> bytes:
        _, raw = encode_signed(
            payload,
            signer or self.natural_resources,
            source=source or NATURAL_RESOURCES.source,
        )
        return raw


def department_key(code: str, signer: Signer) -> TrustedKey:
    authority = department_authority(code)
    return TrustedKey(
        f"{code}-test", code, authority.source, signer.public_key_b64(), authority.may_issue
    )


def world(code: str = "power_supply") -> World:
    natural_resources = Signer.generate(NR_KEY)
    department = Signer.generate(f"{code}-test")
    nr_key = TrustedKey(
        NR_KEY,
        "Natural Resources Bureau",
        NATURAL_RESOURCES.source,
        natural_resources.public_key_b64(),
        NATURAL_RESOURCES.may_issue,
    )
    own = department_key(code, department)
    return World(
        natural_resources,
        department,
        Signer.generate("stranger"),
        TrustStore([nr_key, own]),
        TrustStore([own]),
    )


def enforcer(w: World, code: str = "power_supply", store: MemoryStore | None = None) -> Enforcer:
    return Enforcer(
        load_catalogue().department(code),
        store or MemoryStore(),
        w.trust,
        w.department,
        lambda: NOW,
    )


def store_of(e: Enforcer) -> MemoryState:
    assert isinstance(e.store, MemoryStore)
    return e.store.state


def filed(case_id: str = "XY-2026-0001") -> CaseFiled:
    return CaseFiled.model_validate({**case_body(), "case_id": case_id})


def restored(case_id: str) -> RestorationVerified:
    return RestorationVerified(
        case_id=case_id,
        verified_on=date(2027, 3, 1),
        natural_resources_officer="王某",
        agriculture_officer="李某",
    )


def revoked(case_id: str) -> CaseRevoked:
    return CaseRevoked(
        case_id=case_id,
        court="孝义市人民法院",
        decision_no="(2027)晋1181行初5号",
        revoked_on=date(2027, 4, 1),
    )


def penalty(case_id: str) -> PenaltyDecided:
    return PenaltyDecided(
        case_id=case_id,
        decision_no="孝自然资罚〔2026〕12号",
        decided_on=date(2026, 11, 2),
        fine_yuan="120000.00",
        summary="限期拆除，恢复耕地原状，并处罚款",
    )


def accountability(case_id: str) -> AccountabilityTriggered:
    return AccountabilityTriggered(
        case_id=case_id,
        township="duizhen",
        basic_farmland_mu="6",
        cultivated_mu="6",
        rule="seed §四(五): 5 mu of permanent basic farmland or more",
    )


def acks(w: World, state: MemoryState) -> list[Payload]:
    """The acknowledgements in the outbox, verified as a reader of the department would."""
    return [
        decode(e.value, w.department_trust)[1]
        for e in state.outbox
        if e.topic == ACKNOWLEDGEMENTS.name
    ]


# --- applying ------------------------------------------------------------------------


async def test_case_filed_for_power_supply_applies_one_block_and_one_signed_ack() -> None:
    w = world()
    e = enforcer(w)
    case = filed()
    outcome = await e.handle([w.message(w.event(case))])

    assert (outcome.applied, outcome.lifted, outcome.failed, outcome.duplicates) == (1, 0, 0, 0)
    assert outcome.dead_letters == []
    state = store_of(e)
    [block] = state.blocks
    assert (block.measure, block.case_id, block.lifted_at) == (
        "refuse_power_supply",
        case.case_id,
        None,
    )
    assert block.subject_id == case.subject.id
    assert block.applied_at == NOW
    assert block.legal_basis.startswith("供水、供电、燃气、金融企业不得")
    assert state.cases[case.case_id].township == case.township

    [outgoing] = state.outbox
    assert outgoing.topic == ACKNOWLEDGEMENTS.name
    assert outgoing.key == case.case_id
    assert outgoing.event_type == "redline.measure.applied.v1"
    # Verifies against a trust store that holds the department's key and nothing else.
    envelope, payload = decode(outgoing.value, w.department_trust)
    assert envelope.id == outgoing.event_id
    assert envelope.source == "/authorities/power_supply"
    assert envelope.subject == case.case_id
    assert isinstance(payload, MeasureApplied)
    assert payload.department == "power_supply"
    assert payload.measure == "refuse_power_supply"
    assert payload.reference == f"power_supply/refuse_power_supply/{case.case_id}"
    assert payload.applied_at == NOW
    assert payload.caused_by in state.consumed
    assert state.consumed[payload.caused_by] == CaseFiled.event_type


async def test_the_same_batch_twice_changes_nothing_the_second_time() -> None:
    w = world()
    e = enforcer(w)
    batch = [w.message(w.event(filed("C-1"))), w.message(w.event(filed("C-2")))]
    first = await e.handle(batch)
    assert (first.applied, first.duplicates) == (2, 0)
    state = store_of(e)
    blocks, outbox, consumed = list(state.blocks), list(state.outbox), dict(state.consumed)

    second = await e.handle(batch)
    assert (second.applied, second.lifted, second.failed, second.duplicates) == (0, 0, 0, 2)
    assert second.dead_letters == []
    assert state.blocks == blocks
    assert state.outbox == outbox
    assert state.consumed == consumed


async def test_a_duplicate_within_one_batch_is_counted_once() -> None:
    w = world()
    e = enforcer(w)
    raw = w.event(filed())
    outcome = await e.handle([w.message(raw), w.message(raw)])
    assert (outcome.applied, outcome.duplicates) == (1, 1)
    assert len(store_of(e).blocks) == 1
    assert len(store_of(e).outbox) == 1


async def test_a_second_case_filed_for_the_same_case_applies_nothing_new() -> None:
    w = world()
    e = enforcer(w)
    case = filed()
    await e.handle([w.message(w.event(case))])
    outcome = await e.handle([w.message(w.event(case))])  # a new event id, the same case
    assert (outcome.applied, outcome.duplicates) == (0, 0)
    assert len(store_of(e).blocks) == 1
    assert len(store_of(e).outbox) == 1


async def test_a_first_version_case_filed_is_upcast_and_applied() -> None:
    w = world()
    e = enforcer(w)
    old = CaseFiledV1.model_validate(
        {
            **{k: v for k, v in case_body().items() if k != "parcels"},
            "case_id": "OLD-1",
            "land_class": "cultivated",
            "area_mu": "2",
            "clue_id": None,
        }
    )
    outcome = await e.handle([w.message(w.event(old))])
    assert outcome.applied == 1
    state = store_of(e)
    assert [(b.measure, b.case_id) for b in state.blocks] == [("refuse_power_supply", "OLD-1")]
    assert list(state.consumed.values()) == ["redline.case.filed.v1"]


# --- lifting -------------------------------------------------------------------------


async def test_restoration_lifts_the_block_and_acks_measure_lifted() -> None:
    w = world()
    e = enforcer(w)
    case = filed()
    await e.handle([w.message(w.event(case))])
    outcome = await e.handle([w.message(w.event(restored(case.case_id)))])

    assert (outcome.applied, outcome.lifted, outcome.failed) == (0, 1, 0)
    state = store_of(e)
    [block] = state.blocks
    assert (block.lifted_at, block.lift_reason) == (NOW, "restoration_verified")
    assert await e.store.blocks(subject_id=case.subject.id, active_only=True) == []

    applied_ack, lifted_ack = state.outbox
    assert lifted_ack.topic == ACKNOWLEDGEMENTS.name
    assert lifted_ack.event_type == "redline.measure.lifted.v1"
    _, payload = decode(lifted_ack.value, w.department_trust)
    assert isinstance(payload, MeasureLifted)
    assert (payload.measure, payload.reason, payload.lifted_at) == (
        "refuse_power_supply",
        "restoration_verified",
        NOW,
    )
    assert lifted_ack.event_id != applied_ack.event_id


async def test_filed_and_restored_in_one_batch() -> None:
    w = world()
    e = enforcer(w)
    case = filed()
    outcome = await e.handle([w.message(w.event(case)), w.message(w.event(restored(case.case_id)))])
    assert (outcome.applied, outcome.lifted) == (1, 1)
    assert [o.event_type for o in store_of(e).outbox] == [
        "redline.measure.applied.v1",
        "redline.measure.lifted.v1",
    ]


async def test_a_second_restoration_lifts_nothing() -> None:
    w = world()
    e = enforcer(w)
    case = filed()
    await e.handle([w.message(w.event(case)), w.message(w.event(restored(case.case_id)))])
    outcome = await e.handle([w.message(w.event(revoked(case.case_id)))])
    assert (outcome.lifted, outcome.failed) == (0, 0)
    assert len(store_of(e).outbox) == 2


async def test_a_lift_for_a_measure_never_applied_does_nothing() -> None:
    # development_reform: filed applies the feasibility refusal; no penalty, so the credit
    # record was never published, and a revocation must lift only what was applied.
    w = world("development_reform")
    e = enforcer(w, "development_reform")
    case = filed()
    await e.handle([w.message(w.event(case))])
    outcome = await e.handle([w.message(w.event(revoked(case.case_id)))])

    assert (outcome.applied, outcome.lifted, outcome.failed) == (0, 1, 0)
    state = store_of(e)
    assert [(b.measure, b.lift_reason) for b in state.blocks] == [
        ("refuse_feasibility_approval", "revoked")
    ]
    lifted = [p for p in acks(w, state) if isinstance(p, MeasureLifted)]
    assert [(p.measure, p.reason) for p in lifted] == [("refuse_feasibility_approval", "revoked")]
    assert [p.event_type for p in acks(w, state)] == [
        "redline.measure.applied.v1",
        "redline.measure.lifted.v1",
    ]


# --- dead letters --------------------------------------------------------------------


def _unknown_type_event(w: World, case_id: str) -> bytes:
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source=NATURAL_RESOURCES.source,
        type="redline.case.teleported.v1",
        subject=case_id,
        time=NOW,
        dataschema=schema_uri("redline.case.teleported.v1"),
        data={"case_id": case_id},
    )
    return encode(sign(envelope, w.natural_resources))


def _dead_letters(w: World, state: MemoryState) -> list[DeadLetter]:
    letters = []
    for event in state.outbox:
        if event.topic != DEAD_LETTERS.name:
            continue
        assert event.key == "department.power_supply"
        assert event.event_type == DeadLetter.event_type
        _, payload = decode(event.value, w.department_trust)
        assert isinstance(payload, DeadLetter)
        letters.append(payload)
    return letters


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("garbage", "invalid_event"),
        ("none", "invalid_event"),
        ("bad_data", "invalid_event"),
        ("unknown_key", "signature_unknown_key"),
        ("not_allowed", "signature_issuer_not_allowed"),
        ("wrong_source", "signature_source_mismatch"),
        ("tampered", "signature_bad_signature"),
        ("unsigned", "signature_malformed"),
        ("unknown_type", "unknown_event_type"),
    ],
)
async def test_an_untrusted_message_is_dead_lettered_and_the_batch_carries_on(
    kind: str, reason: str
) -> None:
    w = world()
    e = enforcer(w)
    bad_case = filed("BAD-1")
    raw: bytes | None
    if kind == "garbage":
        raw = b"\xff\x00 this is not an event"
    elif kind == "none":
        raw = None
    elif kind == "bad_data":
        good = w.event(bad_case).decode()
        raw = good.replace('"township":"duizhen"', '"township":""').encode()
        # re-sign the altered data so only the payload validation can refuse it
        envelope = Envelope.model_validate_json(raw)
        raw = encode(sign(envelope, w.natural_resources))
    elif kind == "unknown_key":
        raw = w.event(bad_case, signer=w.stranger)
    elif kind == "not_allowed":
        raw = w.event(bad_case, signer=w.department, source="/authorities/power_supply")
    elif kind == "wrong_source":
        raw = w.event(bad_case, source="/authorities/somebody_else")
    elif kind == "tampered":
        raw = w.event(bad_case).replace(b"duizhen", b"xiaoyi")
    elif kind == "unsigned":
        raw = encode(new_event(bad_case, source=NATURAL_RESOURCES.source))
    else:
        raw = _unknown_type_event(w, bad_case.case_id)

    good_case = filed("GOOD-1")
    bad_message = w.message(raw)
    outcome = await e.handle([bad_message, w.message(w.event(good_case))])

    assert outcome.dead_letters == [reason]
    assert outcome.applied == 1
    state = store_of(e)
    assert [b.case_id for b in state.blocks] == ["GOOD-1"]
    assert list(state.cases) == ["GOOD-1"]
    [letter] = _dead_letters(w, state)
    assert letter.reason == reason
    assert letter.consumer == "department.power_supply"
    assert (letter.topic, letter.partition, letter.offset) == (
        VIOLATIONS.name,
        0,
        bad_message.offset,
    )
    assert base64.b64decode(letter.original_b64) == (raw or b"")
    [ack] = acks(w, state)
    assert isinstance(ack, MeasureApplied)
    assert ack.case_id == "GOOD-1"


async def test_every_kind_of_bad_message_in_one_batch_gives_one_dead_letter_each() -> None:
    w = world()
    e = enforcer(w)
    bad = filed("BAD-1")
    batch = [
        w.message(b"not json"),
        w.message(None),
        w.message(w.event(bad, signer=w.stranger)),
        w.message(w.event(bad, signer=w.department, source="/authorities/power_supply")),
        w.message(_unknown_type_event(w, "BAD-1")),
        w.message(w.event(filed("GOOD-1"))),
    ]
    outcome = await e.handle(batch)
    assert outcome.dead_letters == [
        "invalid_event",
        "invalid_event",
        "signature_unknown_key",
        "signature_issuer_not_allowed",
        "unknown_event_type",
    ]
    assert outcome.applied == 1
    state = store_of(e)
    letters = _dead_letters(w, state)
    assert [letter.offset for letter in letters] == [m.offset for m in batch[:5]]
    assert [base64.b64decode(letter.original_b64) for letter in letters] == [
        m.value or b"" for m in batch[:5]
    ]
    assert [b.case_id for b in state.blocks] == ["GOOD-1"]
    # Dead letters are not consumed events: nothing of the bad ones is marked as taken.
    assert len(state.consumed) == 1


def _deeply_nested_data(w: World, depth: int) -> bytes:
    """An envelope naming a trusted key, with a bogus signature over deeply nested data."""
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source=NATURAL_RESOURCES.source,
        type=CaseFiled.event_type,
        subject="BAD-1",
        time=NOW,
        dataschema=schema_uri(CaseFiled.event_type),
        data={"case_id": "BAD-1"},
        signingkey=NR_KEY,
        signature=base64.b64encode(bytes(64)).decode("ascii"),
    )
    nested = "[" * depth + "]" * depth
    return encode(envelope).replace(b'"case_id":"BAD-1"', f'"x":{nested}'.encode())


@pytest.mark.parametrize(
    "kind",
    ["nested_json_100k", "nested_data_500"],
)
async def test_deeply_nested_json_is_dead_lettered_not_raised(kind: str) -> None:
    # Both are far below MAX_EVENT_BYTES; an exception escaping handle() makes the faust
    # agent exit unacknowledged, so the same message would stop the department forever.
    w = world()
    e = enforcer(w)
    raw = b"[" * 100_000 if kind == "nested_json_100k" else _deeply_nested_data(w, 500)
    outcome = await e.handle([w.message(raw), w.message(w.event(filed("GOOD-1")))])
    assert len(outcome.dead_letters) == 1
    assert outcome.dead_letters[0] in {"invalid_event", "signature_malformed"}
    assert outcome.applied == 1
    [letter] = _dead_letters(w, store_of(e))
    assert base64.b64decode(letter.original_b64) == raw


# --- failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "event", "measures"),
    [
        ("development_reform", penalty, ["publish_credit_record"]),
        ("discipline", accountability, ["accountability_referral"]),
        ("public_security", accountability, ["receive_criminal_referral"]),
    ],
)
async def test_an_event_for_a_case_never_filed_here_acks_measure_failed(
    code: str, event: Any, measures: list[str]
) -> None:
    w = world(code)
    e = enforcer(w, code)
    outcome = await e.handle([w.message(w.event(event("UNSEEN-1")))])
    assert (outcome.applied, outcome.failed) == (0, len(measures))
    state = store_of(e)
    assert state.blocks == []
    failures = [p for p in acks(w, state) if isinstance(p, MeasureFailed)]
    assert len(failures) == len(acks(w, state))
    assert [(p.measure, p.case_id, p.department) for p in failures] == [
        (m, "UNSEEN-1", code) for m in measures
    ]
    assert [o.topic for o in state.outbox] == [ACKNOWLEDGEMENTS.name] * len(measures)
    assert [o.event_type for o in state.outbox] == ["redline.measure.failed.v1"] * len(measures)


async def test_a_penalty_after_filing_applies_the_credit_record() -> None:
    w = world("development_reform")
    e = enforcer(w, "development_reform")
    case = filed()
    await e.handle([w.message(w.event(case))])
    outcome = await e.handle([w.message(w.event(penalty(case.case_id)))])
    assert (outcome.applied, outcome.failed) == (1, 0)
    assert sorted(b.measure for b in store_of(e).blocks) == [
        "publish_credit_record",
        "refuse_feasibility_approval",
    ]


# --- derived ids ---------------------------------------------------------------------


async def test_derived_ack_ids_are_stable_across_fresh_stores() -> None:
    w = world()
    case = filed()
    raw = w.event(case)
    first = enforcer(w)
    second = enforcer(w)
    await first.handle([w.message(raw)])
    await second.handle([w.message(raw)])
    [a] = store_of(first).outbox
    [b] = store_of(second).outbox
    assert a.event_id == b.event_id
    uuid.UUID(a.event_id)

    other = enforcer(w)
    await other.handle([w.message(w.event(filed("XY-2026-0002")))])
    assert store_of(other).outbox[0].event_id != a.event_id

    # A planned lift and a planned failure also get the same id when planned again.
    restoration = w.event(restored(case.case_id))
    await first.handle([w.message(restoration)])
    await second.handle([w.message(restoration)])
    assert store_of(first).outbox[1].event_id == store_of(second).outbox[1].event_id

    dr = world("development_reform")
    late = dr.event(penalty("UNSEEN-1"))
    x = enforcer(dr, "development_reform")
    y = enforcer(dr, "development_reform")
    await x.handle([dr.message(late)])
    await y.handle([dr.message(late)])
    assert store_of(x).outbox[0].event_id == store_of(y).outbox[0].event_id


async def test_derived_dead_letter_ids_are_stable() -> None:
    w = world()
    first = enforcer(w)
    second = enforcer(w)
    message = w.message(b"garbage")
    await first.handle([message])
    await second.handle([message])
    assert store_of(first).outbox[0].event_id == store_of(second).outbox[0].event_id
