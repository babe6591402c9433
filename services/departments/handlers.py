"""The enforcer: one department's effect of a batch of violation events, written once.

Each batch is decoded and verified, then everything it changes (cases, blocks, consumed
event ids, acknowledgements, dead letters) is written in one transaction. A redelivered
event finds its id consumed and changes nothing; a message that cannot be trusted goes
to the dead-letter topic with its reason and original bytes, and the batch carries on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime

from events.authorities import department_authority
from events.catalogue import Department, Target
from events.codec import EventDecoder
from events.decisions import UNRECORDED_FACTS
from events.envelope import Envelope
from events.models import (
    CaseFacts,
    CaseFiled,
    MeasureApplied,
    MeasureFailed,
    MeasureLifted,
    MeasuresAnswered,
)
from events.models.measures import MAX_ANSWERS, MeasureAnswer
from events.signing import Signer
from events.topics import ACKNOWLEDGEMENTS
from services.consumer import Decoded, Events, take
from services.consuming import BatchCounts, Issuer, RawMessage, decode_or_dead_letter
from services.departments.domain import (
    Apply,
    Effect,
    InForce,
    Lift,
    Step,
    case_ids_in,
    effects,
    fold_events,
)
from services.departments.ports import (
    BatchWrites,
    BlockApplied,
    BlockLifted,
    DepartmentStore,
    DepartmentTransaction,
    FactsCorrected,
    KnownCase,
    NewCase,
    TargetRef,
)
from services.outbox.ports import OutgoingEvent

__all__ = ["BatchOutcome", "Enforcer", "RawMessage", "known_case", "target_of"]

# The word each answer's identity is derived under: never changed, or a redelivered
# event would be answered a second time.
ANSWERS: dict[type[MeasureAnswer], str] = {
    MeasureApplied: "applied",
    MeasureLifted: "lifted",
    MeasureFailed: "failed",
}


@dataclass(frozen=True)
class Answer:
    """One answer of a batch, and the words that identify it (services.consuming.derived_id)."""

    payload: MeasureAnswer
    identity: str


def target_of(target: Target, case: KnownCase) -> TargetRef:
    """What a block is held against on this case: never wider than its measure's target."""
    if target is Target.subject:
        return case.subject_id
    facts = case.facts or UNRECORDED_FACTS
    return facts.site if target is Target.site else facts.project


def known_case(filed: CaseFiled) -> KnownCase:
    """The case as a department keeps it: its subject in the clear, and its facts."""
    return KnownCase(
        case_id=filed.case_id,
        township=filed.township,
        subject_kind=filed.subject.kind,
        subject_id=filed.subject.id,
        subject_name=filed.subject.name,
        facts=filed.facts,
    )


@dataclass
class BatchOutcome(BatchCounts):
    applied: int = 0
    lifted: int = 0
    failed: int = 0


@dataclass(eq=False)
class Enforcer:
    """A handler of the consumer skeleton (services.consumer): decode, read the batch's
    cases and blocks in force, plan (pure), write."""

    department: Department
    store: DepartmentStore
    decode_event: EventDecoder  # events.codec.decoder(trust), or a host's DecodedOnce
    signer: Signer
    clock: Callable[[], datetime]
    consumer: str = field(init=False)  # its name in logs, metrics and dead letters
    issuer: Issuer = field(init=False)  # signs as the department's authority

    def __post_init__(self) -> None:
        self.consumer = f"department.{self.department.code}"
        self.issuer = Issuer(self.signer, department_authority(self.department.code).source)

    async def handle(self, messages: Sequence[RawMessage]) -> BatchOutcome:
        return await take(self, messages)

    def decode(self, messages: Sequence[RawMessage]) -> Decoded:
        decoded = decode_or_dead_letter(messages, self.decode_event, self.consumer, self.issuer)
        return Decoded(*decoded)

    def transaction(self) -> AbstractAsyncContextManager[DepartmentTransaction]:
        return self.store.transaction()

    async def read(self, tx: DepartmentTransaction, fresh: Events) -> InForce[KnownCase]:
        case_ids = case_ids_in(fresh)
        return InForce(await tx.known_cases(case_ids), await tx.active_blocks(case_ids))

    def plan(self, fresh: Events, state: InForce[KnownCase]) -> tuple[BatchWrites, BatchOutcome]:
        """Each block change in order, acknowledged; each measure asked on a case this
        department never heard of, answered as failed."""
        known, active = dict(state.cases), set(state.active)
        writes = BatchWrites(cases=[], applied=[], lifted=[], outgoing=[])
        outcome = BatchOutcome()
        now = self.clock()

        def filed(envelope: Envelope, payload: CaseFiled) -> KnownCase:
            case = known_case(payload)
            writes.cases.append(NewCase(case, envelope.id))
            return case

        def corrected(envelope: Envelope, case: KnownCase, facts: CaseFacts) -> KnownCase:
            # Before its starts: a measure moved to a corrected site is held there.
            writes.corrected.append(FactsCorrected(case.case_id, facts, envelope.id))
            return replace(case, facts=facts)

        answers: list[Answer] = []
        asks = functools.partial(effects, self.department)
        for step in fold_events(fresh, known, active, asks=asks, filed=filed, corrected=corrected):
            if step.case is None:
                outcome.failed += len(step.wanted)
                answers.extend(self._failed(step, effect) for effect in step.wanted)
                continue
            for effect in step.changes:
                if isinstance(effect, Apply):
                    outcome.applied += 1
                    writes.changes.append(self._block(effect, step.case, now, step.envelope.id))
                    answers.append(self._applied(step, effect, now))
                else:
                    outcome.lifted += 1
                    writes.changes.append(
                        BlockLifted(
                            effect.measure.code, step.case_id, effect.reason, now, step.envelope.id
                        )
                    )
                    answers.append(self._lifted(step, effect, now))
        writes.outgoing.extend(self._answered(answers))
        return writes, outcome

    async def apply(
        self,
        tx: DepartmentTransaction,
        plan: tuple[BatchWrites, BatchOutcome],
        dead: Sequence[OutgoingEvent],
    ) -> BatchOutcome:
        writes, outcome = plan
        writes.outgoing.extend(dead)
        await tx.write(writes)
        return outcome

    @staticmethod
    def _block(effect: Apply, case: KnownCase, now: datetime, event_id: str) -> BlockApplied:
        """The block as the registry decided it, held against the case's target now."""
        measure, why = effect.measure, effect.decision
        return BlockApplied(
            measure=measure.code,
            case=case,
            legal_basis=measure.legal_basis,
            at=now,
            event_id=event_id,
            target=why.target,
            target_ref=target_of(why.target, case),
            rule=why.rule,
            land=why.land,
            facts=why.facts,
        )

    def _applied(self, step: Step[KnownCase], effect: Apply, now: datetime) -> Answer:
        measure = effect.measure.code
        return self._answer(
            MeasureApplied,
            step,
            measure,
            reference=f"{self.department.code}/{measure}/{step.case_id}",
            applied_at=now,
        )

    def _lifted(self, step: Step[KnownCase], effect: Lift, now: datetime) -> Answer:
        return self._answer(
            MeasureLifted, step, effect.measure.code, reason=effect.reason, lifted_at=now
        )

    def _failed(self, step: Step[KnownCase], effect: Effect) -> Answer:
        return self._answer(
            MeasureFailed,
            step,
            effect.measure.code,
            error="the case's case.filed event never reached this department",
        )

    def _answer(
        self, model: type[MeasureAnswer], step: Step[KnownCase], measure: str, **fields: object
    ) -> Answer:
        """What `step`'s event did to `measure`, with the words its acknowledgement's id is
        derived from: the event that caused it is named, so a block applied again after a
        lift, or lifted again, is answered again."""
        payload = model.model_validate(
            {
                "department": self.department.code,
                "case_id": step.case_id,
                "measure": measure,
                "caused_by": step.envelope.id,
                **fields,
            }
        )
        answer = ANSWERS[model]
        return Answer(
            payload, f"{self.department.code}:{answer}:{measure}:{step.case_id}:{step.envelope.id}"
        )

    def _answered(self, answers: Sequence[Answer]) -> list[OutgoingEvent]:
        """The batch's answers, signed once per MAX_ANSWERS, keyed by department (one
        partition, so its answers stay in order); each id is derived from the answers it
        carries, so a retry of the batch cannot send them twice."""
        return [
            self.issuer.event(
                MeasuresAnswered(
                    department=self.department.code,
                    answers=[a.payload for a in chunk],
                ),
                topic=ACKNOWLEDGEMENTS.name,
                key=self.department.code,
                identity="|".join(a.identity for a in chunk),
            )
            for chunk in (
                answers[start : start + MAX_ANSWERS]
                for start in range(0, len(answers), MAX_ANSWERS)
            )
        ]
