"""Enforcer.handle against an in-memory store: blocks, lifts, signed acks, dead letters."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from events.authorities import NATURAL_RESOURCES, department_authority
from events.catalogue import Stage, Target, load_catalogue
from events.codec import decode, decoder, encode_signed
from events.decisions import UNRECORDED_FACTS, decide
from events.envelope import Envelope, encode, new_event, schema_uri
from events.models import (
    AccountabilityTriggered,
    CaseCorrected,
    CaseFacts,
    CaseFiled,
    CaseFiledV1,
    CaseRevoked,
    ConfiscationCompleted,
    DeadLetter,
    LandProceduresObtained,
    MeasureApplied,
    MeasureDecision,
    MeasureFailed,
    MeasureLifted,
    MeasuresAnswered,
    Parcel,
    Payload,
    PenaltyDecided,
    RestorationVerified,
)
from events.models.measures import MeasureAnswer
from events.signing import Signer, TrustedKey, TrustStore, sign
from events.topics import ACKNOWLEDGEMENTS, DEAD_LETTERS, VIOLATIONS
from services.departments.handlers import Enforcer, RawMessage
from services.departments.ports import BlockFilter
from tests.fakes.departments import MemoryState, MemoryStore
from tests.support import (
    business_premises_facts,
    case_body,
    corrected_event,
    new_parcel_code,
    step_event,
)

NOW = datetime(2026, 10, 13, 9, 30, tzinfo=UTC)
NR_KEY = "natural_resources-test"
CATALOGUE = load_catalogue()
FARMLAND = [Parcel(land_class="permanent_basic_farmland", area_mu="6")]


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
        decoder(w.trust),
        w.department,
        lambda: NOW,
    )


def store_of(e: Enforcer) -> MemoryState:
    assert isinstance(e.store, MemoryStore)
    return e.store.state


def filed(case_id: str = "XY-2026-0001", **body: Any) -> CaseFiled:
    """A case.filed as the registry sends it: with the measures its facts start."""
    case = CaseFiled.model_validate({**case_body(), "case_id": case_id, **body})
    starts = decide(CATALOGUE, [Stage.filing], case.parcels, case.facts)
    return case.model_copy(update={"starts": starts})


async def after_filing(
    code: str = "power_supply", case: CaseFiled | None = None
) -> tuple[World, Enforcer, CaseFiled]:
    """Department `code`'s enforcer once it has handled `case` (by default `filed()`)."""
    w = world(code)
    e = enforcer(w, code)
    case = case or filed()
    await e.handle([w.message(w.event(case))])
    return w, e, case


def facts_of(**changes: Any) -> CaseFacts:
    """The default case's kind of facts (business premises of an unpermitted project)."""
    return CaseFacts.model_validate(business_premises_facts(**changes))


def corrected(
    case: CaseFiled, after: CaseFacts, reached: tuple[Stage, ...] = (Stage.filing,)
) -> CaseCorrected:
    """A correction of `case`'s facts as the registry sends it: what ends, what starts."""
    return corrected_event(
        case.case_id, case.parcels, case.facts, after, reached=reached, catalogue=CATALOGUE
    )


def procedures(case_id: str) -> LandProceduresObtained:
    return step_event(LandProceduresObtained, case_id)


def confiscated(case: CaseFiled) -> ConfiscationCompleted:
    starts = decide(CATALOGUE, [Stage.confiscation], case.parcels, case.facts)
    return step_event(ConfiscationCompleted, case.case_id, starts)


def restored(case_id: str) -> RestorationVerified:
    return step_event(RestorationVerified, case_id)


def revoked(case_id: str) -> CaseRevoked:
    return step_event(CaseRevoked, case_id)


def penalty(case_id: str) -> PenaltyDecided:
    return step_event(
        PenaltyDecided, case_id, decide(CATALOGUE, [Stage.penalty], FARMLAND, facts_of())
    )


def accountability(case_id: str) -> AccountabilityTriggered:
    starts = decide(CATALOGUE, [Stage.accountability], FARMLAND, facts_of())
    return step_event(AccountabilityTriggered, case_id, starts)


def acks(w: World, state: MemoryState) -> list[MeasureAnswer]:
    """The answers the outbox's acknowledgements carry, in order, each verified as a reader
    of the department would."""
    found: list[MeasureAnswer] = []
    for e in state.outbox:
        if e.topic == ACKNOWLEDGEMENTS.name and e.value is not None:
            answered = decode(e.value, w.department_trust)[1]
            assert isinstance(answered, MeasuresAnswered)
            found.extend(answered.answers)
    return found


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
    # Held against the premises, not the subject everywhere, and showing why.
    assert (block.target, block.target_ref) == ("site", case.facts.site)
    assert block.rule == "land in cultivated or permanent_basic_farmland and " + (
        "(construction_project or business_premises)"
    )
    assert block.facts == ("construction_project", "business_premises")
    assert block.land == ("cultivated",)
    assert state.cases[case.case_id].township == case.township
    assert state.cases[case.case_id].facts == case.facts

    [outgoing] = state.outbox
    assert outgoing.topic == ACKNOWLEDGEMENTS.name
    # Keyed by department: one partition keeps a department's answers in order.
    assert outgoing.key == "power_supply"
    assert outgoing.event_type == "redline.measure.answered.v1"
    # Verifies against a trust store that holds the department's key and nothing else.
    assert outgoing.value is not None
    envelope, answered = decode(outgoing.value, w.department_trust)
    assert envelope.id == outgoing.event_id
    assert envelope.source == "/authorities/power_supply"
    assert envelope.subject == "power_supply"
    assert isinstance(answered, MeasuresAnswered)
    assert answered.department == "power_supply"
    [payload] = answered.answers
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
    w, e, case = await after_filing()
    outcome = await e.handle([w.message(w.event(case))])  # a new event id, the same case
    assert (outcome.applied, outcome.duplicates) == (0, 0)
    assert len(store_of(e).blocks) == 1
    assert len(store_of(e).outbox) == 1


@pytest.mark.parametrize(
    ("code", "measures"),
    [("finance", ["refuse_fiscal_funding"]), ("power_supply", [])],
)
async def test_a_first_version_case_filed_is_upcast_and_applies_what_its_land_decides(
    code: str, measures: list[str]
) -> None:
    # v1 recorded no facts: only measures that need no more than farmland start, and
    # power is not refused to a site nobody recorded.
    w = world(code)
    e = enforcer(w, code)
    old = CaseFiledV1.model_validate(
        {
            **{k: v for k, v in case_body().items() if k not in ("parcels", "facts")},
            "case_id": "OLD-1",
            "land_class": "cultivated",
            "area_mu": "2",
            "clue_id": None,
        }
    )
    outcome = await e.handle([w.message(w.event(old))])
    assert outcome.applied == len(measures)
    state = store_of(e)
    assert [(b.measure, b.case_id, b.target) for b in state.blocks] == [
        (m, "OLD-1", "subject") for m in measures
    ]
    assert list(state.consumed.values()) == ["redline.case.filed.v1"]
    assert state.cases["OLD-1"].facts == UNRECORDED_FACTS


# --- lifting -------------------------------------------------------------------------


async def test_restoration_lifts_the_block_and_acks_measure_lifted() -> None:
    w, e, case = await after_filing()
    outcome = await e.handle([w.message(w.event(restored(case.case_id)))])

    assert (outcome.applied, outcome.lifted, outcome.failed) == (0, 1, 0)
    state = store_of(e)
    [block] = state.blocks
    assert (block.lifted_at, block.lift_reason) == (NOW, "restoration_verified")
    assert await e.store.blocks(BlockFilter(subject_id=case.subject.id, active_only=True)) == []

    applied_ack, lifted_ack = state.outbox
    assert lifted_ack.topic == ACKNOWLEDGEMENTS.name
    assert lifted_ack.event_type == "redline.measure.answered.v1"
    assert lifted_ack.value is not None
    _, answered = decode(lifted_ack.value, w.department_trust)
    assert isinstance(answered, MeasuresAnswered)
    [payload] = answered.answers
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
    # One signed acknowledgement for the batch, its answers in the order they happened.
    assert [o.event_type for o in store_of(e).outbox] == ["redline.measure.answered.v1"]
    assert [p.event_type for p in acks(w, store_of(e))] == [
        "redline.measure.applied.v1",
        "redline.measure.lifted.v2",
    ]


async def test_a_second_restoration_lifts_nothing() -> None:
    w = world()
    e = enforcer(w)
    case = filed()
    await e.handle([w.message(w.event(case)), w.message(w.event(restored(case.case_id)))])
    outcome = await e.handle([w.message(w.event(revoked(case.case_id)))])
    assert (outcome.lifted, outcome.failed) == (0, 0)
    assert len(store_of(e).outbox) == 1  # nothing answered, nothing sent


async def test_a_lift_for_a_measure_never_applied_does_nothing() -> None:
    # development_reform: filed applies the feasibility refusal; no penalty, so the credit
    # record was never published, and a revocation must lift only what was applied.
    w, e, case = await after_filing("development_reform")
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
        "redline.measure.lifted.v2",
    ]


# --- facts, corrections and the newer end conditions ----------------------------------


async def test_a_case_whose_facts_start_nothing_here_changes_no_block_and_sends_no_ack() -> None:
    # A home on farmland with no project: the registry starts the funding refusals, not
    # power. The case is still recorded, for a correction that may start power later.
    w = world()
    e = enforcer(w)
    case = filed(facts={"site": {"location": "兑镇东村12号"}, "building_use": "residence"})
    assert case.starts and "refuse_power_supply" not in {d.measure for d in case.starts}
    outcome = await e.handle([w.message(w.event(case))])
    assert (outcome.applied, outcome.lifted, outcome.failed) == (0, 0, 0)
    state = store_of(e)
    assert state.blocks == []
    assert state.outbox == []
    assert state.cases[case.case_id].facts == case.facts


async def test_a_correction_that_ends_a_measure_lifts_it_with_reason_corrected() -> None:
    w, e, case = await after_filing()
    correction = corrected(case, facts_of(project=None, building_use="residence"))
    assert correction.ends and not correction.starts
    outcome = await e.handle([w.message(w.event(correction))])

    assert (outcome.applied, outcome.lifted, outcome.failed) == (0, 1, 0)
    state = store_of(e)
    [block] = state.blocks
    assert (block.lifted_at, block.lift_reason) == (NOW, "corrected")
    assert state.cases[case.case_id].facts == correction.facts
    lifted = acks(w, state)[-1]
    assert isinstance(lifted, MeasureLifted)
    assert (lifted.measure, lifted.reason) == ("refuse_power_supply", "corrected")


async def test_a_correction_that_moves_the_site_lifts_and_applies_at_the_new_one() -> None:
    w, e, case = await after_filing()
    moved = facts_of(site={"location": "兑镇西村新厂房", "parcel_code": new_parcel_code()})
    correction = corrected(case, moved)
    assert "refuse_power_supply" in correction.ends
    outcome = await e.handle([w.message(w.event(correction))])

    assert (outcome.applied, outcome.lifted) == (1, 1)
    state = store_of(e)
    [block] = state.blocks  # one row per measure and case, now at the new site
    assert (block.target, block.target_ref, block.lifted_at) == ("site", moved.site, None)
    assert await e.store.blocks(BlockFilter(active_only=True, site=moved.site.location))
    assert not await e.store.blocks(BlockFilter(active_only=True, site=case.facts.site.location))
    applied, lift, reapplied = acks(w, state)
    assert isinstance(lift, MeasureLifted) and lift.reason == "corrected"
    assert isinstance(applied, MeasureApplied) and isinstance(reapplied, MeasureApplied)
    assert lift.caused_by == reapplied.caused_by != applied.caused_by
    assert len(state.outbox) == 2  # the filing's answer, then the correction's two


async def test_a_correction_that_moves_the_project_moves_housings_halt() -> None:
    w, e, case = await after_filing("housing")
    project: dict[str, Any] = {
        "code": "2401-141181-04-01-000777",
        "name": "某物流仓库",
        "works_started": False,
    }
    moved = facts_of(project=project)
    outcome = await e.handle([w.message(w.event(corrected(case, moved)))])

    # The halt ends on the old project and starts on the new one.
    halts = await e.store.blocks(BlockFilter(active_only=True, project=project["code"]))
    assert [(b.measure, b.target_ref) for b in halts] == [("halt_works", moved.project)]
    assert (outcome.applied, outcome.lifted) == (1, 1)
    assert case.facts.project is not None
    old = case.facts.project.code
    assert not await e.store.blocks(BlockFilter(active_only=True, project=old))
    lifts = [p for p in acks(w, store_of(e)) if isinstance(p, MeasureLifted)]
    assert [(p.measure, p.reason) for p in lifts] == [("halt_works", "corrected")]


def transport_project(sector: str | None = "transport") -> dict[str, Any]:
    return {
        "code": "2401-141181-04-01-000888",
        "name": "某县道改线工程",
        "works_started": True,
        "sector": sector,
    }


async def test_transport_halts_only_its_own_projects_and_a_corrected_sector_lifts_it() -> None:
    w = world("transport")
    e = enforcer(w, "transport")
    municipal = filed("XY-2026-0002")  # the default case's project, sector not recorded
    road = filed(facts=facts_of(project=transport_project(), building_use="none"))
    outcome = await e.handle([w.message(w.event(municipal)), w.message(w.event(road))])

    assert (outcome.applied, outcome.failed) == (1, 0)
    [halt] = store_of(e).blocks
    assert (halt.measure, halt.case_id, halt.target) == (
        "halt_transport_works",
        road.case_id,
        "project",
    )
    other = facts_of(project=transport_project("other"), building_use="none")
    outcome = await e.handle([w.message(w.event(corrected(road, other)))])
    assert (outcome.applied, outcome.lifted) == (0, 1)
    assert [b.lift_reason for b in store_of(e).blocks] == ["corrected"]


async def test_a_measure_applied_again_after_a_correction_lifted_it_gets_a_fresh_ack() -> None:
    w, e, case = await after_filing()
    home = facts_of(project=None, building_use="residence")
    await e.handle([w.message(w.event(corrected(case, home)))])
    lifted_case = case.model_copy(update={"facts": home})
    again = corrected(lifted_case, case.facts)
    assert [d.measure for d in again.starts] and not again.ends
    outcome = await e.handle([w.message(w.event(again))])

    assert (outcome.applied, outcome.lifted) == (1, 0)
    state = store_of(e)
    [block] = state.blocks
    assert (block.lifted_at, block.lift_reason, block.target_ref) == (None, None, case.facts.site)
    kinds = [type(p).__name__ for p in acks(w, state)]
    assert kinds == ["MeasureApplied", "MeasureLifted", "MeasureApplied"]
    assert len({o.event_id for o in state.outbox}) == 3  # the re-apply is acknowledged anew

    # And lifted again by restoration: a second lift, with its own acknowledgement.
    outcome = await e.handle([w.message(w.event(restored(case.case_id)))])
    assert outcome.lifted == 1
    assert len({o.event_id for o in state.outbox}) == 4


@pytest.mark.parametrize(
    ("code", "sector", "measure"),
    [
        ("housing", None, "halt_works"),
        ("transport", "transport", "halt_transport_works"),
        ("water_resources", "water", "supervise_water_project_land_procedures"),
    ],
)
async def test_land_procedures_lift_each_departments_halt_on_its_project(
    code: str, sector: str | None, measure: str
) -> None:
    w, e, case = await after_filing(code, filed(facts=facts_of(project=transport_project(sector))))
    assert [b.measure for b in store_of(e).blocks] == [measure]
    outcome = await e.handle([w.message(w.event(procedures(case.case_id)))])
    assert (outcome.applied, outcome.lifted) == (0, 1)
    assert {b.measure: b.lift_reason for b in store_of(e).blocks} == {
        measure: "land_procedures_obtained"
    }


async def test_land_procedures_lift_the_feasibility_refusal_but_not_the_credit_record() -> None:
    w = world("development_reform")
    e = enforcer(w, "development_reform")
    case = filed()
    await e.handle([w.message(w.event(case)), w.message(w.event(penalty(case.case_id)))])
    outcome = await e.handle([w.message(w.event(procedures(case.case_id)))])
    assert (outcome.applied, outcome.lifted) == (0, 1)
    assert {b.measure: b.lift_reason for b in store_of(e).blocks} == {
        "refuse_feasibility_approval": "land_procedures_obtained",
        "publish_credit_record": None,
    }
    [lifted] = [p for p in acks(w, store_of(e)) if isinstance(p, MeasureLifted)]
    assert lifted.reason == "land_procedures_obtained"


async def test_confiscation_lifts_finances_funding_refusal_and_starts_its_supervision() -> None:
    w, e, case = await after_filing("finance")
    outcome = await e.handle([w.message(w.event(confiscated(case)))])

    assert (outcome.applied, outcome.lifted) == (1, 1)
    blocks = {b.measure: b for b in store_of(e).blocks}
    assert blocks["refuse_fiscal_funding"].lift_reason == "confiscation_completed"
    supervision = blocks["supervise_confiscated_property"]
    assert (supervision.lifted_at, supervision.target) == (None, "site")
    assert supervision.target_ref == case.facts.site
    assert supervision.legal_basis.startswith("负责指导、监督自然资源局查处案件没收")


async def test_every_kind_of_event_redelivered_changes_nothing() -> None:
    w = world()
    e = enforcer(w)
    case = filed()
    home = facts_of(project=None, building_use="residence")
    moved = facts_of(site={"location": "兑镇西村新厂房"})
    history = [
        case,
        corrected(case, moved),
        corrected(case.model_copy(update={"facts": moved}), home),
        corrected(case.model_copy(update={"facts": home}), moved),
        procedures(case.case_id),
        restored(case.case_id),
    ]
    batch = [w.message(w.event(payload)) for payload in history]
    for message in batch:  # one event a batch, as a trickle would bring them
        await e.handle([message])
    state = store_of(e)
    blocks, outbox, cases = list(state.blocks), list(state.outbox), dict(state.cases)
    assert [b.lift_reason for b in blocks] == ["land_procedures_obtained"]

    again = await e.handle(batch)  # redelivered in one batch
    assert (again.applied, again.lifted, again.failed, again.duplicates) == (0, 0, 0, 6)
    assert (state.blocks, state.outbox, state.cases) == (blocks, outbox, cases)

    # The same history in one batch, to a fresh store, ends in the same state.
    fresh = enforcer(w)
    await fresh.handle(batch)
    assert store_of(fresh).blocks == blocks
    # The same answers, signed together instead of one event at a time.
    assert acks(w, store_of(fresh)) == acks(w, state)
    assert len(store_of(fresh).outbox) == 1


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
        assert event.value is not None
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
        (
            "finance",
            lambda case_id: confiscated(filed(case_id)),
            ["refuse_fiscal_funding", "supervise_confiscated_property"],  # lift, then apply
        ),
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
    assert [(o.topic, o.event_type) for o in state.outbox] == [
        (ACKNOWLEDGEMENTS.name, "redline.measure.answered.v1")
    ]
    assert [p.event_type for p in failures] == ["redline.measure.failed.v1"] * len(measures)


# What accountability.triggered started before the referrals left the measures (#17).
RETIRED = ("receive_criminal_referral", "accountability_referral", "record_for_cadre_evaluation")


@pytest.mark.parametrize("code", load_catalogue().codes)
async def test_accountability_old_or_new_is_consumed_and_asks_nothing_of_any_department(
    code: str,
) -> None:
    """The threshold starts no measure now; one stored before that names the retired
    referral measures, which no department owns: consumed, not dead-lettered, no ack."""
    w, e, case = await after_filing(code)
    before = len(store_of(e).outbox)
    new = accountability(case.case_id)
    assert new.starts == []
    old = new.model_copy(
        update={
            "starts": [MeasureDecision(measure=m, target=Target.subject, rule="r") for m in RETIRED]
        }
    )
    outcome = await e.handle([w.message(w.event(new)), w.message(w.event(old))])
    assert (outcome.applied, outcome.failed, outcome.dead_letters) == (0, 0, [])
    assert len(store_of(e).outbox) == before
    assert len(store_of(e).consumed) == 3


async def test_a_penalty_after_filing_applies_the_credit_record() -> None:
    w, e, case = await after_filing("development_reform")
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


async def test_a_batch_is_answered_in_order_in_as_few_signed_events_as_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.departments.handlers.MAX_ANSWERS", 2)
    w = world()
    cases = [filed(f"XY-2026-{n:04d}") for n in range(1, 6)]
    batch = [w.message(w.event(case)) for case in cases]
    first, second = enforcer(w), enforcer(w)
    outcome = await first.handle(batch)
    await second.handle(batch)

    assert outcome.applied == 5
    outbox = store_of(first).outbox
    assert [o.key for o in outbox] == ["power_supply"] * 3  # 2 + 2 + 1 answers
    assert [p.case_id for p in acks(w, store_of(first))] == [c.case_id for c in cases]
    assert len({o.event_id for o in outbox}) == 3
    # Each id follows from the answers it carries: a retry of the batch sends no new one.
    assert [o.event_id for o in outbox] == [o.event_id for o in store_of(second).outbox]


def test_answers_signed_together_are_one_departments() -> None:
    applied = MeasureApplied(
        case_id="XY-2026-0001",
        department="finance",
        measure="refuse_fiscal_funding",
        reference="R",
        applied_at=NOW,
        caused_by="e1",
    )
    with pytest.raises(ValidationError, match="another department"):
        MeasuresAnswered(department="power_supply", answers=[applied])
    with pytest.raises(ValidationError, match="answers"):
        MeasuresAnswered(department="finance", answers=[])


async def test_derived_dead_letter_ids_are_stable() -> None:
    w = world()
    first = enforcer(w)
    second = enforcer(w)
    message = w.message(b"garbage")
    await first.handle([message])
    await second.handle([message])
    assert store_of(first).outbox[0].event_id == store_of(second).outbox[0].event_id
