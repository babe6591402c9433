"""The enforcer: one department's effect of a batch of violation events, written once.

Each batch is decoded and verified, then everything it changes (cases, blocks, consumed
event ids, acknowledgements, dead letters) is written in one transaction. A redelivered
event finds its id consumed and changes nothing; a message that cannot be trusted goes
to the dead-letter topic with its reason and original bytes, and the batch carries on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from events.authorities import department_authority
from events.catalogue import Department
from events.envelope import Envelope
from events.models import (
    CaseFiled,
    MeasureApplied,
    MeasureFailed,
    MeasureLifted,
    Payload,
)
from events.signing import Signer, TrustStore
from events.topics import ACKNOWLEDGEMENTS
from services.consuming import (
    Issuer,
    RawMessage,
    case_id_of,
    decode_or_dead_letter,
    first_deliveries,
)
from services.departments.domain import Apply, Lift, effects
from services.departments.ports import (
    BatchWrites,
    BlockApplied,
    BlockLifted,
    Consumed,
    DepartmentStore,
    KnownCase,
    NewCase,
)
from services.outbox.ports import OutgoingEvent

__all__ = ["BatchOutcome", "Enforcer", "RawMessage"]


@dataclass
class BatchOutcome:
    applied: int = 0
    lifted: int = 0
    failed: int = 0
    duplicates: int = 0
    dead_letters: list[str] = field(default_factory=list)


class Enforcer:
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
        outcome = BatchOutcome()
        decoded, dead, outcome.dead_letters = decode_or_dead_letter(
            messages, self.trust, self.consumer, self.issuer
        )

        # Sorted, so that concurrent claims of overlapping batches wait, never deadlock.
        events = sorted({Consumed(envelope.id, envelope.type) for envelope, _ in decoded})
        async with self.store.transaction() as tx:
            claimed = await tx.claim(events)
            taken = {event.event_id for event in events} - claimed
            fresh, outcome.duplicates = first_deliveries(decoded, taken)
            case_ids = sorted({case_id_of(payload) for _, payload in fresh} - {""})
            known = await tx.known_cases(case_ids)
            active = await tx.active_blocks(case_ids)
            writes = self._plan(fresh, known, active, outcome)
            writes.outgoing.extend(dead)
            await tx.write(writes)
        return outcome

    def _plan(
        self,
        fresh: list[tuple[Envelope, Payload]],
        known: dict[str, KnownCase],
        active: set[tuple[str, str]],
        outcome: BatchOutcome,
    ) -> BatchWrites:
        writes = BatchWrites(cases=[], applied=[], lifted=[], outgoing=[])
        now = self.clock()
        for envelope, payload in fresh:
            if isinstance(payload, CaseFiled) and payload.case_id not in known:
                filed = KnownCase(
                    case_id=payload.case_id,
                    township=payload.township,
                    subject_kind=payload.subject.kind,
                    subject_id=payload.subject.id,
                    subject_name=payload.subject.name,
                )
                known[filed.case_id] = filed
                writes.cases.append(NewCase(filed, envelope.id))
            for effect in effects(self.department, payload):
                case_id = case_id_of(payload)
                measure = effect.measure.code
                key = (measure, case_id)
                case = known.get(case_id)
                if case is None:
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
                elif isinstance(effect, Apply) and key not in active:
                    active.add(key)
                    outcome.applied += 1
                    writes.applied.append(
                        BlockApplied(measure, case, effect.measure.legal_basis, now, envelope.id)
                    )
                    writes.outgoing.append(
                        self._ack(
                            MeasureApplied,
                            f"applied:{measure}:{case_id}",
                            case_id=case_id,
                            measure=measure,
                            caused_by=envelope.id,
                            reference=f"{self.department.code}/{measure}/{case_id}",
                            applied_at=now,
                        )
                    )
                elif isinstance(effect, Lift) and key in active:
                    active.discard(key)
                    outcome.lifted += 1
                    reason = effect.reason.value
                    writes.lifted.append(BlockLifted(measure, case_id, reason, now, envelope.id))
                    writes.outgoing.append(
                        self._ack(
                            MeasureLifted,
                            f"lifted:{measure}:{case_id}",
                            case_id=case_id,
                            measure=measure,
                            caused_by=envelope.id,
                            reason=reason,
                            lifted_at=now,
                        )
                    )
        return writes

    def _ack(self, model: type[Payload], identity: str, **fields: object) -> OutgoingEvent:
        """A signed acknowledgement from this department, its id derived from `identity`
        so that a retry cannot send two."""
        payload = model.model_validate({"department": self.department.code, **fields})
        return self.issuer.event(
            payload,
            topic=ACKNOWLEDGEMENTS.name,
            key=case_id_of(payload),
            identity=f"{self.department.code}:{identity}",
        )
