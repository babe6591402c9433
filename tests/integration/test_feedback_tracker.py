"""The feedback tracker on a real PostgreSQL: what each department owes comes from the
decisions in the events, lifts only where an apply was owed and not lifted since, and a
measure lifted and owed again is answered again."""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from events.authorities import (
    FEEDBACK_TRACKER,
    NATURAL_RESOURCES,
    Authority,
    demo_subscriber,
    department_authority,
)
from events.catalogue import LiftTrigger, Stage, load_catalogue
from events.codec import decode, encode_signed
from events.decisions import decide
from events.models import (
    CaseFacts,
    CaseFiled,
    DeadLetter,
    LandProceduresObtained,
    MeasureApplied,
    MeasureFailed,
    MeasureLifted,
    MeasuresAnswered,
    Parcel,
    Payload,
    ResponseOverdue,
    RestorationVerified,
)
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.adapters.feedback_store import MIGRATIONS, SCHEMA, PostgresFeedbackStore
from services.adapters.migrate import migrate
from services.adapters.postgres import create_pool
from services.config import Settings
from services.consuming import Issuer, RawMessage
from services.entrypoints.feedback import run_tracker
from services.feedback.handlers import Tracker
from services.runtime.devkeys import load_dev_signer
from tests.conftest import Stack
from tests.support import business_premises_facts, case_body, corrected_event, eventually

CATALOGUE = load_catalogue()
T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)
Owed = tuple[str, str, str]  # department, measure, action


class _Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class _Feed:
    """Signs events as the registry and the departments would, and hands them to the
    tracker as broker messages."""

    def __init__(self, settings: Settings, tracker: Tracker, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.tracker = tracker
        self.pool = pool
        self.bureau = load_dev_signer(settings.home, NATURAL_RESOURCES)
        self.offsets = itertools.count()
        self.case_id = "RL-T-" + str(id(self))[-6:]

    def message(self, payload: Payload, *, by: str | None = None) -> tuple[str, RawMessage]:
        if by is None:
            signer, source, topic = self.bureau, NATURAL_RESOURCES.source, VIOLATIONS.name
        else:
            authority = department_authority(by)
            signer = load_dev_signer(self.settings.home, authority)
            source, topic = authority.source, ACKNOWLEDGEMENTS.name
        envelope, raw = encode_signed(payload, signer, source=source, subject=self.case_id, time=T0)
        message = RawMessage(topic, 0, next(self.offsets), self.case_id.encode(), raw)
        return envelope.id, message

    async def send(self, payload: Payload, *, by: str | None = None) -> str:
        event_id, message = self.message(payload, by=by)
        outcome = await self.tracker.handle([message])
        assert outcome.dead_letters == []
        return event_id

    async def ack(self, department: str, measure: str, action: str, caused_by: str) -> str:
        fields: dict[str, Any] = {
            "case_id": self.case_id,
            "department": department,
            "measure": measure,
            "caused_by": caused_by,
        }
        payload: Payload
        if action == "apply":
            payload = MeasureApplied(reference="R", applied_at=T0, **fields)
        else:
            payload = MeasureLifted(reason="corrected", lifted_at=T0, **fields)
        return await self.send(payload, by=department)

    async def rows(self) -> dict[Owed, asyncpg.Record]:
        found = await self.pool.fetch(
            "SELECT department, measure, action, required_by, done_at, answers, overdue_at "
            "FROM responses WHERE case_id = $1",
            self.case_id,
        )
        return {(r["department"], r["measure"], r["action"]): r for r in found}

    async def owed(self, action: str, required_by: str | None = None) -> set[tuple[str, str]]:
        return {
            (department, measure)
            for (department, measure, act), row in (await self.rows()).items()
            if act == action
            and row["required_by"] is not None
            and (required_by is None or row["required_by"] == required_by)
        }


@pytest.fixture
async def feed(own_database: Settings, trust: TrustStore) -> AsyncIterator[_Feed]:
    _, database = own_database.require()
    await migrate(database, package=MIGRATIONS, schema=SCHEMA)  # the tracker's own outbox
    pool = await create_pool(database, max_size=2)
    issuer = Issuer(load_dev_signer(own_database.home, FEEDBACK_TRACKER), FEEDBACK_TRACKER.source)
    tracker = Tracker(CATALOGUE, PostgresFeedbackStore(pool), trust, issuer, _Clock())
    try:
        yield _Feed(own_database, tracker, pool)
    finally:
        await pool.close()


PARCELS = [Parcel.model_validate({"land_class": "cultivated", "area_mu": "1.5"})]


def _filed(case_id: str, facts: CaseFacts) -> CaseFiled:
    details = {k: v for k, v in case_body(("cultivated", "1.5")).items() if k != "facts"}
    starts = decide(CATALOGUE, [Stage.filing], PARCELS, facts)
    return CaseFiled.model_validate(
        {**details, "facts": facts, "case_id": case_id, "starts": starts}
    )


def _owners(measures: set[str]) -> set[tuple[str, str]]:
    return {
        (department.code, measure.code)
        for department in CATALOGUE.departments
        for measure in department.measures
        if measure.code in measures
    }


def _lifted_by(trigger: LiftTrigger) -> set[str]:
    return {code for code, m in CATALOGUE.measures().items() if trigger in m.lifted_by}


PREMISES = CaseFacts.model_validate(business_premises_facts())
RESIDENCE = CaseFacts.model_validate(
    {"site": {"location": "东关村北侧民房"}, "building_use": "residence"}
)


def _restored(case_id: str) -> RestorationVerified:
    return RestorationVerified(
        case_id=case_id,
        verified_on=date(2026, 11, 1),
        natural_resources_officer="李明",
        agriculture_officer="王芳",
    )


async def test_applies_follow_the_decisions_and_lifts_only_what_was_applied(
    feed: _Feed,
) -> None:
    # business premises of a project, with trees planted on the farmland besides
    trees = CaseFacts.model_validate(business_premises_facts(illegal_afforestation=True))
    filed = _filed(feed.case_id, trees)
    filing = await feed.send(filed)
    started = {d.measure for d in filed.starts}
    assert await feed.owed("apply", filing) == _owners(started)
    assert await feed.owed("lift") == set()

    obtained = LandProceduresObtained(
        case_id=feed.case_id,
        approval_no="晋政地〔2026〕5号",
        approved_on=date(2026, 11, 1),
        approved_by="山西省人民政府",
    )
    procedures = await feed.send(obtained)
    lifted = started & _lifted_by(LiftTrigger.land_procedures_obtained)
    assert "halt_works" in lifted
    assert "refuse_afforestation_subsidy" not in lifted  # the land, not a permit, ends it
    assert await feed.owed("lift", procedures) == _owners(lifted)
    # nothing that was never applied here is owed a lift
    assert not {m for _, m in await feed.owed("lift")} - started

    restoration = await feed.send(_restored(feed.case_id))
    # only what restoration lifts and land procedures had not lifted already
    rest = started & _lifted_by(LiftTrigger.restoration_verified) - lifted
    assert rest == {"refuse_afforestation_subsidy"}
    assert await feed.owed("lift", restoration) == _owners(rest)
    assert await feed.owed("lift", procedures) == _owners(lifted)  # not asked twice


async def test_a_case_whose_facts_call_for_nothing_owes_nothing(feed: _Feed) -> None:
    filed = _filed(feed.case_id, PREMISES).model_copy(update={"starts": []})
    await feed.send(filed)
    await feed.send(_restored(feed.case_id))
    assert await feed.rows() == {}


async def test_a_measure_lifted_by_a_correction_and_started_again_is_owed_again(
    feed: _Feed,
) -> None:
    power = ("power_supply", "refuse_power_supply")
    filing = await feed.send(_filed(feed.case_id, PREMISES))
    await feed.ack(*power, "apply", filing)
    assert (await feed.rows())[(*power, "apply")]["done_at"] is not None

    home = await feed.send(corrected_event(feed.case_id, PARCELS, PREMISES, RESIDENCE))
    assert power in await feed.owed("lift", home)
    assert power not in await feed.owed("apply", home)
    await feed.ack(*power, "lift", home)

    business = await feed.send(corrected_event(feed.case_id, PARCELS, RESIDENCE, PREMISES))
    rows = await feed.rows()
    assert rows[(*power, "apply")]["required_by"] == business
    assert rows[(*power, "apply")]["done_at"] is None  # the new cycle is not answered yet
    # a late copy of the first cycle's answer does not answer the second
    await feed.ack(*power, "apply", filing)
    assert (await feed.rows())[(*power, "apply")]["done_at"] is None
    await feed.ack(*power, "apply", business)
    assert (await feed.rows())[(*power, "apply")]["answers"] == business

    restoration = await feed.send(_restored(feed.case_id))
    rows = await feed.rows()
    assert rows[(*power, "lift")]["required_by"] == restoration
    assert rows[(*power, "lift")]["done_at"] is None  # the earlier lift was another cycle


def _together(feed: _Feed, *answers: MeasureApplied | MeasureLifted) -> RawMessage:
    """The power department's answers signed together, as one batch's acknowledgement."""
    batch = MeasuresAnswered(department=POWER[0], answers=list(answers))
    return feed.message(batch, by=POWER[0])[1]


async def test_a_whole_cycle_in_one_batch_ends_as_if_taken_one_at_a_time(feed: _Feed) -> None:
    # Applied, lifted by a correction and applied again, with the department's three
    # answers signed together: one row answered twice in a batch, each in its turn.
    filing_id, filing = feed.message(_filed(feed.case_id, PREMISES))
    home_id, home = feed.message(corrected_event(feed.case_id, PARCELS, PREMISES, RESIDENCE))
    again_id, again = feed.message(corrected_event(feed.case_id, PARCELS, RESIDENCE, PREMISES))
    lift = MeasureLifted(
        case_id=feed.case_id,
        department=POWER[0],
        measure=POWER[1],
        reason="corrected",
        lifted_at=T0,
        caused_by=home_id,
    )
    answered = _together(
        feed, _applied(feed, filing_id, "R1"), lift, _applied(feed, again_id, "R2")
    )
    outcome = await feed.tracker.handle([filing, home, again, answered])

    assert (outcome.answered, outcome.dead_letters) == (3, [])
    rows = await feed.rows()
    applied, lifted = rows[(*POWER, "apply")], rows[(*POWER, "lift")]
    assert (applied["required_by"], applied["answers"]) == (again_id, again_id)
    assert applied["done_at"] is not None
    assert (lifted["required_by"], lifted["answers"]) == (home_id, home_id)
    assert lifted["done_at"] is not None


async def test_answers_to_one_row_ahead_of_their_requirements_count_in_turn(
    feed: _Feed,
) -> None:
    # The acknowledgements ran ahead of the violation stream: two answers for the apply
    # row in one event, both counting (nothing they answer was read yet), the later last.
    filing_id, _ = feed.message(_filed(feed.case_id, PREMISES))
    again_id, _ = feed.message(corrected_event(feed.case_id, PARCELS, RESIDENCE, PREMISES))
    answered = _together(feed, _applied(feed, filing_id, "R1"), _applied(feed, again_id, "R2"))
    outcome = await feed.tracker.handle([answered])

    assert (outcome.answered, outcome.dead_letters) == (2, [])
    applied = (await feed.rows())[(*POWER, "apply")]
    assert (applied["required_by"], applied["answers"]) == (None, again_id)


async def test_an_answer_read_before_its_requirement_counts(feed: _Feed) -> None:
    filed = _filed(feed.case_id, PREMISES)
    event_id, message = feed.message(filed)
    await feed.ack("banks", "refuse_loans", "apply", event_id)  # the other topic ran ahead
    await feed.tracker.handle([message])
    row = (await feed.rows())[("banks", "refuse_loans", "apply")]
    assert (row["required_by"], row["answers"]) == (event_id, event_id)
    assert row["done_at"] is not None


async def test_the_same_events_again_change_nothing(feed: _Feed) -> None:
    messages = [feed.message(_filed(feed.case_id, PREMISES))[1]]
    messages.append(feed.message(_restored(feed.case_id))[1])
    first = await feed.tracker.handle(messages)
    before = await feed.rows()
    again = await feed.tracker.handle(messages)
    assert first.required > 0
    assert (again.required, again.duplicates) == (0, 2)
    assert await feed.rows() == before


async def test_overdue_is_noticed_once_per_cycle(feed: _Feed) -> None:
    power = ("power_supply", "refuse_power_supply")
    filing = await feed.send(_filed(feed.case_id, PREMISES))
    clock = feed.tracker.clock
    assert isinstance(clock, _Clock)
    clock.now = T0 + timedelta(days=30)
    first = await feed.tracker.notify_overdue()
    assert first == len(await feed.owed("apply", filing))
    assert await feed.tracker.notify_overdue() == 0  # once

    await feed.send(corrected_event(feed.case_id, PARCELS, PREMISES, RESIDENCE))
    business = await feed.send(corrected_event(feed.case_id, PARCELS, RESIDENCE, PREMISES))
    renewed = (await feed.rows())[(*power, "apply")]
    assert (renewed["required_by"], renewed["overdue_at"]) == (business, None)
    clock.now = T0 + timedelta(days=60)
    await feed.tracker.notify_overdue()
    notices = await feed.pool.fetch(
        "SELECT value FROM feedback.outbox WHERE key = $1 AND event_type = $2",
        feed.case_id,
        ResponseOverdue.event_type,
    )
    power_notices = []
    for row in notices:
        envelope, notice = feed.tracker.decode_event(row["value"])
        assert isinstance(notice, ResponseOverdue)
        if (notice.department, notice.measure, notice.action) == (*power, "apply"):
            power_notices.append(envelope.id)
    assert len(power_notices) == len(set(power_notices)) == 2  # one per cycle


# --- an acknowledgement counts only from the authority that owns the measure ----------

POWER = ("power_supply", "refuse_power_supply")


def _signed_ack(feed: _Feed, authority: Authority, payload: Payload) -> RawMessage:
    """An acknowledgement as `authority` signs it with its own valid key."""
    signer = load_dev_signer(feed.settings.home, authority)
    _, raw = encode_signed(payload, signer, source=authority.source, subject=feed.case_id, time=T0)
    return RawMessage(ACKNOWLEDGEMENTS.name, 0, next(feed.offsets), feed.case_id.encode(), raw)


def _applied(feed: _Feed, caused_by: str, reference: str) -> MeasureApplied:
    department, measure = POWER
    return MeasureApplied(
        case_id=feed.case_id,
        department=department,
        measure=measure,
        reference=reference,
        applied_at=T0,
        caused_by=caused_by,
    )


NOT_OWNED, NOT_ALLOWED = "acknowledgement_not_owned", "signature_issuer_not_allowed"


@pytest.mark.parametrize(
    ("forger", "reasons"),
    [
        # another department's valid key, for an apply and for a failure
        (department_authority("banks"), [NOT_OWNED, NOT_OWNED]),
        # a subscriber, but of the banks' list (a subscriber never sends failures)
        (demo_subscriber("banks"), [NOT_OWNED, NOT_ALLOWED]),
        # a core service whose key the trust store knows, but not for answers
        (FEEDBACK_TRACKER, [NOT_ALLOWED, NOT_ALLOWED]),
    ],
    ids=["department", "subscriber", "tracker"],
)
async def test_an_acknowledgement_for_another_departments_measure_is_refused(
    feed: _Feed, forger: Authority, reasons: list[str]
) -> None:
    filing = await feed.send(_filed(feed.case_id, PREMISES))
    department, measure = POWER
    forged: list[Payload] = [
        _applied(feed, filing, "FORGED"),
        MeasureFailed(
            case_id=feed.case_id,
            department=department,
            measure=measure,
            error="forged failure",
            caused_by=filing,
        ),
    ]
    messages = [_signed_ack(feed, forger, payload) for payload in forged]
    outcome = await feed.tracker.handle(messages)
    assert outcome.dead_letters == reasons
    assert outcome.answered == 0
    row = (await feed.rows())[(*POWER, "apply")]
    assert row["done_at"] is None and row["answers"] is None  # still pending
    failed = await feed.pool.fetchval(
        "SELECT failed_at FROM responses WHERE case_id = $1 AND department = $2 "
        "AND measure = $3 AND action = 'apply'",
        feed.case_id,
        *POWER,
    )
    assert failed is None
    letters = await feed.pool.fetch(
        "SELECT value FROM feedback.outbox WHERE event_type = $1 AND key = 'feedback_tracker'",
        DeadLetter.event_type,
    )
    refused = [feed.tracker.decode_event(row["value"])[1] for row in letters]
    originals = {m.value for m in messages}
    kept = [
        letter
        for letter in refused
        if isinstance(letter, DeadLetter) and base64.b64decode(letter.original_b64) in originals
    ]
    assert sorted(letter.reason for letter in kept) == sorted(reasons)  # nothing lost
    for letter in kept:
        if letter.reason == NOT_OWNED:
            assert "answers for banks, not for power_supply" in letter.detail


@pytest.mark.parametrize(
    "owner",
    [department_authority("power_supply"), demo_subscriber("power_supply")],
    ids=lambda authority: authority.code,
)
async def test_the_owner_or_its_subscriber_answers_for_the_measure(
    feed: _Feed, owner: Authority
) -> None:
    filing = await feed.send(_filed(feed.case_id, PREMISES))
    outcome = await feed.tracker.handle([_signed_ack(feed, owner, _applied(feed, filing, "OK"))])
    assert (outcome.answered, outcome.dead_letters) == (1, [])
    row = (await feed.rows())[(*POWER, "apply")]
    assert row["done_at"] is not None


async def test_a_department_may_not_answer_for_a_measure_it_does_not_own(feed: _Feed) -> None:
    """power_supply's key, its own department named, but the bank's measure: refused."""
    filing = await feed.send(_filed(feed.case_id, PREMISES))
    stray = MeasureApplied(
        case_id=feed.case_id,
        department="power_supply",
        measure="refuse_loans",
        reference="R",
        applied_at=T0,
        caused_by=filing,
    )
    message = _signed_ack(feed, department_authority("power_supply"), stray)
    outcome = await feed.tracker.handle([message])
    assert outcome.dead_letters == ["acknowledgement_not_owned"]
    assert ("power_supply", "refuse_loans", "apply") not in await feed.rows()


async def test_a_forged_acknowledgement_on_the_broker_leaves_the_measure_pending(
    own_database: Settings, stack: Stack, trust: TrustStore
) -> None:
    """The tracker process on the real broker and Postgres: banks' valid key says power
    supply applied its block; refused (dead-lettered with the reason), the requirement
    stays pending, and power supply's own answer then counts."""
    case_id = f"RL-FORGED-{uuid.uuid4().hex[:8]}"
    bureau = load_dev_signer(own_database.home, NATURAL_RESOURCES)
    filed = _filed(case_id, PREMISES)
    filing, filed_raw = encode_signed(filed, bureau, source=NATURAL_RESOURCES.source, time=T0)
    department, measure = POWER

    def ack(authority: Authority, reference: str) -> bytes:
        payload = MeasureApplied(
            case_id=case_id,
            department=department,
            measure=measure,
            reference=reference,
            applied_at=datetime.now(UTC),
            caused_by=filing.id,
        )
        signer = load_dev_signer(own_database.home, authority)
        return encode_signed(payload, signer, source=authority.source, subject=case_id)[1]

    _, database = own_database.require()
    await migrate(database, package=MIGRATIONS, schema=SCHEMA)  # read below before it starts
    pool = await create_pool(database, max_size=2)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka, acks="all")
    await producer.start()
    stop = asyncio.Event()
    tracker = asyncio.create_task(run_tracker(own_database, stop, scan_every=3600))

    async def answer() -> asyncpg.Record | None:
        if tracker.done():
            tracker.result()  # the tracker died: raise its error here
        row: asyncpg.Record | None = await pool.fetchrow(
            "SELECT required_by, done_at, reference FROM responses WHERE case_id = $1 "
            "AND department = $2 AND measure = $3 AND action = 'apply'",
            case_id,
            department,
            measure,
        )
        return row

    forged = ack(department_authority("banks"), "FORGED")

    async def letters() -> list[DeadLetter]:
        """The tracker's dead letters of the forged acknowledgement."""
        await answer()
        rows = await pool.fetch(
            "SELECT value FROM feedback.outbox WHERE event_type = $1", DeadLetter.event_type
        )
        found = [decode(row["value"], trust)[1] for row in rows]
        return [
            letter
            for letter in found
            if isinstance(letter, DeadLetter) and base64.b64decode(letter.original_b64) == forged
        ]

    async def refused() -> bool:
        return bool(await letters())

    try:
        key = case_id.encode()
        await producer.send_and_wait(VIOLATIONS.name, filed_raw, key=key)
        await producer.send_and_wait(ACKNOWLEDGEMENTS.name, forged, key=key)
        await eventually(refused, timeout=120, what="the forged acknowledgement dead-lettered")

        async def required() -> bool:
            row = await answer()
            return row is not None and row["required_by"] == filing.id

        await eventually(required, timeout=60, what="power supply's apply required")
        row = await answer()
        assert row is not None and row["done_at"] is None  # the forgery did not count
        (letter,) = await letters()
        assert (letter.consumer, letter.reason) == ("feedback_tracker", "acknowledgement_not_owned")

        await producer.send_and_wait(
            ACKNOWLEDGEMENTS.name, ack(department_authority(department), "OWNER"), key=key
        )

        async def answered() -> bool:
            row = await answer()
            return row is not None and row["done_at"] is not None

        await eventually(answered, timeout=60, what="the owner's acknowledgement counted")
        row = await answer()
        assert row is not None and row["reference"] == "OWNER"
    finally:
        stop.set()
        await tracker
        await producer.stop()
        await pool.close()
