"""The blocklist builder: keeps every measure's list of blocked subjects, and publishes the
lists of utilities and banks as compacted topics, one record per subject.

Each batch is written in one transaction: subjects, blocks, consumed event ids, and the
new record (or tombstone) of every subject whose list changed, through the builder's
outbox. A redelivered event finds its id consumed and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from events.catalogue import Catalogue
from events.envelope import Envelope
from events.identifiers import mask_name
from events.models import BlocklistHeartbeat, CaseFiled, Payload
from events.privacy import SubjectHasher
from events.signing import TrustStore
from events.topics import BLOCKLIST_MEASURES, HEARTBEAT_KEY, blocklist_topic
from services.blocklist.domain import (
    ActiveBlock,
    ListedSubject,
    entry_for,
    is_apply,
    list_effects,
    owners,
)
from services.blocklist.ports import BlocklistStore, EndedBlock, ListWrites, NewBlock
from services.consuming import (
    Issuer,
    RawMessage,
    case_id_of,
    decode_or_dead_letter,
    derived_id,
    first_deliveries,
)
from services.outbox.ports import OutgoingEvent, PendingEvent

CONSUMER = "blocklist_builder"
TOMBSTONE = "redline.blocklist.tombstone"


@dataclass
class BuildOutcome:
    applied: int = 0
    lifted: int = 0
    published: int = 0
    duplicates: int = 0
    unknown_cases: int = 0
    dead_letters: list[str] = field(default_factory=list)


class Builder:
    def __init__(
        self,
        catalogue: Catalogue,
        store: BlocklistStore,
        *,
        trust: TrustStore,
        issuer: Issuer,
        hasher: SubjectHasher,
        clock: Callable[[], datetime],
    ) -> None:
        self.catalogue = catalogue
        self.owners = owners(catalogue)
        self.store = store
        self.trust = trust
        self.issuer = issuer
        self.hasher = hasher
        self.clock = clock

    async def handle(self, messages: Sequence[RawMessage]) -> BuildOutcome:
        outcome = BuildOutcome()
        decoded, dead, outcome.dead_letters = decode_or_dead_letter(
            messages, self.trust, CONSUMER, self.issuer
        )
        async with self.store.transaction() as tx:
            done = await tx.consumed_among([envelope.id for envelope, _ in decoded])
            fresh, outcome.duplicates = first_deliveries(decoded, done)
            case_ids = sorted({case_id_of(p) for _, p in fresh} - {""})
            subjects = await tx.subjects(case_ids)
            active = await tx.active_on(case_ids)
            writes, touched = self._plan(fresh, subjects, active, outcome)
            await tx.write(writes)
            # The new state of every changed list entry, read back after this batch's writes.
            blocks = await tx.listed(sorted(touched))
            outgoing = self._records(touched, blocks)
            outcome.published = len(outgoing)
            await tx.enqueue([*outgoing, *dead])
        return outcome

    def _plan(
        self,
        fresh: list[tuple[Envelope, Payload]],
        subjects: dict[str, ListedSubject],
        active: set[tuple[str, str]],
        outcome: BuildOutcome,
    ) -> tuple[ListWrites, dict[tuple[str, str], str]]:
        writes = ListWrites(subjects=[], applied=[], lifted=[], consumed=[], outgoing=[])
        touched: dict[tuple[str, str], str] = {}  # (measure, subject hash) -> last cause
        for envelope, payload in fresh:
            writes.consumed.append((envelope.id, envelope.type))
            if isinstance(payload, CaseFiled) and payload.case_id not in subjects:
                subject = ListedSubject(
                    case_id=payload.case_id,
                    subject_hash=self.hasher.hash_id(payload.subject.id),
                    subject_kind=payload.subject.kind,
                    masked_name=mask_name(payload.subject.name),
                )
                subjects[payload.case_id] = subject
                writes.subjects.append((subject, envelope.id))
            case_id = case_id_of(payload)
            for department, effect in list_effects(self.catalogue, self.owners, payload):
                measure = effect.measure.code
                listed = subjects.get(case_id)
                if listed is None:
                    outcome.unknown_cases += 1  # its case.filed never arrived: nothing to list
                    continue
                key = (measure, case_id)
                if is_apply(effect) and key not in active:
                    active.add(key)
                    outcome.applied += 1
                    writes.applied.append(
                        NewBlock(
                            measure,
                            department.code,
                            listed,
                            effect.measure.legal_basis,
                            envelope.time,
                            envelope.id,
                        )
                    )
                elif not is_apply(effect) and key in active:
                    active.discard(key)
                    outcome.lifted += 1
                    writes.lifted.append(EndedBlock(measure, case_id, envelope.time, envelope.id))
                else:
                    continue
                if measure in BLOCKLIST_MEASURES:
                    touched[(measure, listed.subject_hash)] = envelope.id
        return writes, touched

    def _records(
        self, touched: dict[tuple[str, str], str], blocks: Sequence[ActiveBlock]
    ) -> list[OutgoingEvent]:
        """One record per changed (measure, subject): the whole entry, or a tombstone."""
        by_key: dict[tuple[str, str], list[ActiveBlock]] = {key: [] for key in touched}
        for block in blocks:
            by_key[(block.measure, block.subject.subject_hash)].append(block)
        records: list[OutgoingEvent] = []
        for (measure, subject_hash), cause in sorted(touched.items()):
            topic = blocklist_topic(measure).name
            identity = f"{CONSUMER}:{measure}:{subject_hash}:{cause}"
            entry = entry_for(measure, self.hasher.key_id, by_key[(measure, subject_hash)])
            if entry is None:
                records.append(
                    OutgoingEvent(derived_id(identity), TOMBSTONE, topic, subject_hash, None)
                )
            else:
                records.append(
                    self.issuer.event(entry, topic=topic, key=subject_hash, identity=identity)
                )
        return records

    def heartbeats(self, as_of: datetime) -> list[PendingEvent]:
        """A signed heartbeat for every partition of every published list."""
        beats: list[PendingEvent] = []
        for measure in BLOCKLIST_MEASURES:
            topic = blocklist_topic(measure).name
            for partition in range(blocklist_topic(measure).partitions):
                beat = BlocklistHeartbeat(
                    measure=measure, partition=partition, key_id=self.hasher.key_id, as_of=as_of
                )
                signed = self.issuer.event(
                    beat,
                    topic=topic,
                    key=HEARTBEAT_KEY,
                    identity=f"{CONSUMER}:heartbeat:{topic}:{partition}:{as_of.isoformat()}",
                )
                beats.append(
                    PendingEvent(0, topic, HEARTBEAT_KEY, signed.value, partition=partition)
                )
        return beats
