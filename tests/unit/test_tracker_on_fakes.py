"""The feedback tracker on the in-memory store: what a filed case requires, an
acknowledgement that answers it, a redelivery that changes nothing, and each overdue
answer notified once (tests/integration/test_feedback_tracker.py runs it on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.authorities import FEEDBACK_TRACKER, NATURAL_RESOURCES, department_authority
from events.catalogue import Stage, load_catalogue
from events.codec import encode_signed
from events.decisions import decide
from events.models import CaseFiled, MeasureApplied, MeasuresAnswered, Payload, ResponseOverdue
from events.signing import Signer, TrustedKey, TrustStore
from events.topics import ACKNOWLEDGEMENTS, VIOLATIONS
from services.consuming import Issuer, RawMessage
from services.feedback.domain import requirements
from services.feedback.handlers import Tracker
from tests.fakes.feedback import FakeFeedbackStore
from tests.support import case_body

CATALOGUE = load_catalogue()
T0 = datetime(2026, 11, 2, 8, tzinfo=UTC)
BUREAU = Signer.generate("natural_resources-test")


class Bus:
    """Signs events as the registry and the departments would, as broker messages."""

    def __init__(self, departments: list[str]) -> None:
        self.signers = {code: Signer.generate(f"{code}-test") for code in departments}
        keys = [
            TrustedKey(
                "natural_resources-test",
                "Natural Resources Bureau",
                NATURAL_RESOURCES.source,
                BUREAU.public_key_b64(),
                NATURAL_RESOURCES.may_issue,
            ),
            *(
                TrustedKey(
                    f"{code}-test",
                    code,
                    department_authority(code).source,
                    signer.public_key_b64(),
                    department_authority(code).may_issue,
                )
                for code, signer in self.signers.items()
            ),
        ]
        self.trust = TrustStore(keys)
        self.offset = 0

    def message(self, payload: Payload, by: str | None = None) -> tuple[str, RawMessage]:
        if by is None:
            signer, source, topic = BUREAU, NATURAL_RESOURCES.source, VIOLATIONS.name
        else:
            signer, source = self.signers[by], department_authority(by).source
            topic = ACKNOWLEDGEMENTS.name
        subject = by if isinstance(payload, MeasuresAnswered) else None  # keyed as sent
        envelope, raw = encode_signed(payload, signer, source=source, subject=subject, time=T0)
        self.offset += 1
        return envelope.id, RawMessage(topic, 0, self.offset, b"case", raw)


def filed_case() -> CaseFiled:
    case = CaseFiled.model_validate({**case_body(), "case_id": "RL-2026-000001"})
    starts = decide(CATALOGUE, [Stage.filing], case.parcels, case.facts)
    return case.model_copy(update={"starts": starts})


async def test_a_requirement_is_answered_once_and_notified_once_when_overdue() -> None:
    case = filed_case()
    owed = requirements(CATALOGUE, case, T0, "filed")
    assert len(owed) >= 2, "the case must require more than one answer"
    bus = Bus(sorted({r.department for r in owed}))
    store, now = FakeFeedbackStore(), [T0]
    issuer = Issuer(Signer.generate("tracker-test"), FEEDBACK_TRACKER.source)
    tracker = Tracker(CATALOGUE, store, bus.trust, issuer, lambda: now[0])

    filed_id, filed = bus.message(case)
    first = await tracker.handle([filed])
    again = await tracker.handle([filed])  # redelivered: already taken

    assert (first.required, first.duplicates, again.required, again.duplicates) == (
        len(owed),
        0,
        0,
        1,
    )
    assert sorted(store.state.rows) == sorted(r.key for r in owed)
    answered = owed[0]
    ack = MeasureApplied(
        case_id=case.case_id,
        department=answered.department,
        measure=answered.measure,
        caused_by=filed_id,
        reference="R-1",
        applied_at=T0 + timedelta(hours=1),
    )
    outcome = await tracker.handle([bus.message(ack, by=answered.department)[1]])
    assert (outcome.answered, outcome.dead_letters) == (1, [])
    assert store.state.rows[answered.key].done_at == T0 + timedelta(hours=1)

    now[0] = max(r.due_at for r in owed) + timedelta(seconds=1)
    assert await tracker.notify_overdue() == len(owed) - 1  # all but the answered one
    assert await tracker.notify_overdue() == 0
    notices = [e for e in store.state.outbox if e.event_type == ResponseOverdue.event_type]
    assert len(notices) == len(owed) - 1
    assert {e.topic for e in notices} == {ACKNOWLEDGEMENTS.name}


async def test_a_departments_batch_of_answers_counts_each_or_none() -> None:
    case = filed_case()
    owed = requirements(CATALOGUE, case, T0, "filed")
    mine, other = owed[0], next(r for r in owed if r.department != owed[0].department)
    bus = Bus(sorted({r.department for r in owed}))
    store = FakeFeedbackStore()
    issuer = Issuer(Signer.generate("tracker-test"), FEEDBACK_TRACKER.source)
    tracker = Tracker(CATALOGUE, store, bus.trust, issuer, lambda: T0)
    filed_id, filed = bus.message(case)
    await tracker.handle([filed])

    def applied(measure: str, hours: int) -> MeasureApplied:
        return MeasureApplied(
            case_id=case.case_id,
            department=mine.department,
            measure=measure,
            caused_by=filed_id,
            reference="R-1",
            applied_at=T0 + timedelta(hours=hours),
        )

    # Another department's measure among the answers: the whole event is refused.
    stray = MeasuresAnswered(
        department=mine.department, answers=[applied(mine.measure, 1), applied(other.measure, 1)]
    )
    refused = await tracker.handle([bus.message(stray, by=mine.department)[1]])
    assert (refused.answered, refused.dead_letters) == (0, ["acknowledgement_not_owned"])
    assert store.state.rows[mine.key].done_at is None

    batch = MeasuresAnswered(department=mine.department, answers=[applied(mine.measure, 2)])
    outcome = await tracker.handle([bus.message(batch, by=mine.department)[1]])
    assert (outcome.answered, outcome.dead_letters) == (1, [])
    assert store.state.rows[mine.key].done_at == T0 + timedelta(hours=2)
