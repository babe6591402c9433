"""The tracker: requirements from the violation stream, answers from the acknowledgements,
and a notice (response.overdue) once per answer that misses its deadline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime

from events.catalogue import Catalogue
from events.codec import decoder
from events.envelope import Envelope
from events.models import (
    MeasureApplied,
    MeasureFailed,
    MeasureLifted,
    MeasuresAnswered,
    Payload,
    ResponseOverdue,
)
from events.models.measures import MeasureAnswer
from events.signing import TrustStore
from events.topics import ACKNOWLEDGEMENTS
from services.consumer import Decoded, Events, take
from services.consuming import (
    BatchCounts,
    Issuer,
    RawMessage,
    dead_letter,
    decode_or_dead_letter,
)
from services.feedback.domain import NOT_OWNED, Answerers, Requirement, requirements
from services.feedback.ports import FeedbackStore, FeedbackTransaction, FeedbackWrites, Response
from services.outbox.ports import OutgoingEvent

CONSUMER = "feedback_tracker"
ACKNOWLEDGED = (MeasureApplied, MeasureLifted, MeasureFailed)  # one answer an event


def answers_in(payload: Payload) -> list[MeasureAnswer] | None:
    """The answers an acknowledgement carries (one, or a department's batch of them); None
    for any other event."""
    if isinstance(payload, MeasuresAnswered):
        return payload.answers
    if isinstance(payload, ACKNOWLEDGED):
        return [payload]
    return None


def response_to(envelope: Envelope, answer: MeasureAnswer) -> Response:
    """A department's acknowledgement as the answer it records: an apply done, with its
    reference; a lift done; or an apply failed, with its error, as of when it was sent."""
    response = Response(
        answer.case_id,
        answer.department,
        answer.measure,
        "apply",
        envelope.time,
        envelope.id,
        answers=answer.caused_by,
    )
    if isinstance(answer, MeasureApplied):
        return replace(response, at=answer.applied_at, reference=answer.reference)
    if isinstance(answer, MeasureLifted):
        return replace(response, action="lift", at=answer.lifted_at)
    return replace(response, error=answer.error)


@dataclass(frozen=True)
class Tracked:
    """A batch's plan: what it requires of the departments, and their answers."""

    required: list[Requirement]
    responses: list[Response]


@dataclass
class TrackOutcome(BatchCounts):
    required: int = 0
    answered: int = 0


class Tracker:
    def __init__(
        self,
        catalogue: Catalogue,
        store: FeedbackStore,
        trust: TrustStore,
        issuer: Issuer,
        clock: Callable[[], datetime],
        *,
        answerers: Answerers | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.store = store
        self.decode_event = decoder(trust)
        self.issuer = issuer
        self.clock = clock
        self.answerers = answerers or Answerers.of(catalogue)

    async def handle(self, messages: Sequence[RawMessage]) -> TrackOutcome:
        return await take(self, messages)

    def decode(self, messages: Sequence[RawMessage]) -> Decoded:
        """The trusted events, and a dead letter for each other message: one that does not
        decode or verify, and an acknowledgement with an answer its signer may not give
        (another department's measure): such an answer is never recorded, so it cannot
        count, nor do the answers signed with it."""
        decoded: Events = []
        dead: list[OutgoingEvent] = []
        reasons: list[str] = []
        for message in messages:
            found, refused, why = decode_or_dead_letter(
                [message], self.decode_event, CONSUMER, self.issuer
            )
            dead.extend(refused)
            reasons.extend(why)
            for envelope, payload in found:
                refusals = (
                    self.answerers.refusal(envelope.source, a.department, a.measure)
                    for a in answers_in(payload) or []
                )
                refusal = next((r for r in refusals if r is not None), None)
                if refusal is None:
                    decoded.append((envelope, payload))
                    continue
                dead.append(dead_letter(message, CONSUMER, self.issuer, NOT_OWNED, refusal))
                reasons.append(NOT_OWNED)
        return Decoded(decoded, dead, reasons)

    def transaction(self) -> AbstractAsyncContextManager[FeedbackTransaction]:
        return self.store.transaction()

    async def read(self, tx: FeedbackTransaction, fresh: Events) -> None:
        """The plan needs nothing read: the store decides what is owed as it writes."""
        return None

    def plan(self, fresh: Events, state: None) -> Tracked:
        required: list[Requirement] = []
        responses: list[Response] = []
        for envelope, payload in fresh:
            answers = answers_in(payload)
            if answers is not None:
                responses.extend(response_to(envelope, answer) for answer in answers)
            else:
                required.extend(requirements(self.catalogue, payload, envelope.time, envelope.id))
        return Tracked(required, responses)

    async def apply(
        self, tx: FeedbackTransaction, plan: Tracked, dead: Sequence[OutgoingEvent]
    ) -> TrackOutcome:
        # The consumed ids are claimed already (services.consumer.take), before the answers
        # are written: an answer to a requirement read before is told by its claim.
        await tx.record(FeedbackWrites(plan.required, plan.responses, dead))
        return TrackOutcome(required=len(plan.required), answered=len(plan.responses))

    async def notify_overdue(self, limit: int = 1000) -> int:
        """Send response.overdue for every answer past its deadline, once each."""
        async with self.store.transaction() as tx:
            overdue = await tx.claim_overdue(self.clock(), limit)
            await tx.enqueue(
                [
                    self.issuer.event(
                        ResponseOverdue(
                            case_id=w.case_id,
                            department=w.department,
                            measure=w.measure,
                            action=w.action,
                            required_at=w.required_at,
                            due_at=w.due_at,
                        ),
                        topic=ACKNOWLEDGEMENTS.name,
                        key=w.case_id,
                        # A measure lifted and owed again is another answer, another notice.
                        identity=(
                            f"overdue:{w.case_id}:{w.department}:{w.measure}:{w.action}:"
                            f"{w.required_by}"
                        ),
                    )
                    for w in overdue
                ]
            )
        return len(overdue)
