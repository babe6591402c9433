"""The enforcer: one department's effect of a batch of violation events, written once.

Each batch is decoded and verified, then everything it changes (cases, blocks, consumed
event ids, acknowledgements, dead letters) is written in one transaction. A redelivered
event finds its id consumed and changes nothing; a message that cannot be trusted goes
to the dead-letter topic with its reason and original bytes, and the batch carries on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime

from events.authorities import department_authority
from events.catalogue import Department, Target
from events.decisions import UNRECORDED_FACTS
from events.models import (
    CaseCorrected,
    CaseFiled,
    MeasureApplied,
    MeasureFailed,
    MeasureLifted,
    Payload,
)
from events.signing import Signer, TrustStore
from events.topics import ACKNOWLEDGEMENTS
from services.consumer import Decoded, Events, take
from services.consuming import Issuer, RawMessage, case_id_of, decode_or_dead_letter
from services.departments.domain import Apply, effects, fold_blocks
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

__all__ = ["BatchOutcome", "Enforcer", "RawMessage", "target_of"]


def target_of(target: Target, case: KnownCase) -> TargetRef:
    """What a block is held against on this case: never wider than its measure's target."""
    if target is Target.subject:
        return case.subject_id
    facts = case.facts or UNRECORDED_FACTS
    return facts.site if target is Target.site else facts.project


@dataclass(frozen=True)
class Known:
    """What the enforcer's plan needs of the store: the batch's cases and blocks in force."""

    cases: dict[str, KnownCase]
    active: set[tuple[str, str]]


@dataclass
class BatchOutcome:
    applied: int = 0
    lifted: int = 0
    failed: int = 0
    duplicates: int = 0
    dead_letters: list[str] = field(default_factory=list)


class Enforcer:
    """A handler of the consumer skeleton (services.consumer): decode, read the batch's
    cases and blocks in force, plan (pure), write."""

    def __init__(
        self,
        department: Department,
        store: DepartmentStore,
        trust: TrustStore,
        signer: Signer,
        clock: Callable[[], datetime],
    ) -> None:
        self.department = department
        self.store = store
        self.trust = trust
        self.signer = signer
        self.clock = clock
        self.consumer = f"department.{department.code}"
        self.issuer = Issuer(signer, department_authority(department.code).source)

    async def handle(self, messages: Sequence[RawMessage]) -> BatchOutcome:
        return await take(self, messages)

    def decode(self, messages: Sequence[RawMessage]) -> Decoded:
        return Decoded(*decode_or_dead_letter(messages, self.trust, self.consumer, self.issuer))

    def transaction(self) -> AbstractAsyncContextManager[DepartmentTransaction]:
        return self.store.transaction()

    async def read(self, tx: DepartmentTransaction, fresh: Events) -> Known:
        case_ids = sorted({case_id_of(payload) for _, payload in fresh} - {""})
        return Known(await tx.known_cases(case_ids), await tx.active_blocks(case_ids))

    def plan(self, fresh: Events, state: Known) -> tuple[BatchWrites, BatchOutcome]:
        outcome = BatchOutcome()
        writes = self._plan(fresh, dict(state.cases), set(state.active), outcome)
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

    def _plan(
        self,
        fresh: Events,
        known: dict[str, KnownCase],
        active: set[tuple[str, str]],
        outcome: BatchOutcome,
    ) -> BatchWrites:
        writes = BatchWrites(cases=[], applied=[], lifted=[], outgoing=[])
        now = self.clock()
        for envelope, payload in fresh:
            case_id = case_id_of(payload)
            if isinstance(payload, CaseFiled) and case_id not in known:
                filed = KnownCase(
                    case_id=case_id,
                    township=payload.township,
                    subject_kind=payload.subject.kind,
                    subject_id=payload.subject.id,
                    subject_name=payload.subject.name,
                    facts=payload.facts,
                )
                known[case_id] = filed
                writes.cases.append(NewCase(filed, envelope.id))
            elif isinstance(payload, CaseCorrected) and payload.facts and case_id in known:
                # Before its starts: a measure moved to a corrected site is held there.
                known[case_id] = replace(known[case_id], facts=payload.facts)
                writes.corrected.append(FactsCorrected(case_id, payload.facts, envelope.id))
            wanted = effects(self.department, payload)
            case = known.get(case_id)
            if case is None:
                for effect in wanted:
                    measure = effect.measure.code
                    outcome.failed += 1
                    writes.outgoing.append(
                        self._ack(
                            MeasureFailed,
                            f"failed:{measure}:{case_id}:{envelope.id}",
                            case_id=case_id,
                            measure=measure,
                            caused_by=envelope.id,
                            error="the case's case.filed event never reached this department",
                        )
                    )
                continue
            for effect in fold_blocks(active, case_id, wanted):
                measure = effect.measure.code
                if isinstance(effect, Apply):
                    outcome.applied += 1
                    writes.changes.append(self._block(effect, case, now, envelope.id))
                    writes.outgoing.append(
                        self._ack(
                            MeasureApplied,
                            f"applied:{measure}:{case_id}:{envelope.id}",
                            case_id=case_id,
                            measure=measure,
                            caused_by=envelope.id,
                            reference=f"{self.department.code}/{measure}/{case_id}",
                            applied_at=now,
                        )
                    )
                else:
                    outcome.lifted += 1
                    writes.changes.append(
                        BlockLifted(measure, case_id, effect.reason, now, envelope.id)
                    )
                    writes.outgoing.append(
                        self._ack(
                            MeasureLifted,
                            f"lifted:{measure}:{case_id}:{envelope.id}",
                            case_id=case_id,
                            measure=measure,
                            caused_by=envelope.id,
                            reason=effect.reason,
                            lifted_at=now,
                        )
                    )
        return writes

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

    def _ack(self, model: type[Payload], identity: str, **fields: object) -> OutgoingEvent:
        """A signed acknowledgement from this department, its id derived from `identity`
        so that a retry cannot send two. Each identity names the event that caused it, so
        a block applied again after a lift, or lifted again, is acknowledged again."""
        payload = model.model_validate({"department": self.department.code, **fields})
        return self.issuer.event(
            payload,
            topic=ACKNOWLEDGEMENTS.name,
            key=case_id_of(payload),
            identity=f"{self.department.code}:{identity}",
        )
