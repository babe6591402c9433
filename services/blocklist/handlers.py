"""The blocklist builder: keeps every measure's list of blocked subjects, and publishes the
lists of utilities and banks as compacted topics, one record per subject.

It applies the registry's decisions exactly as the departments do (the same `effects`):
each block keeps the rule and facts that started it, and each case its site (as keyed
hashes), recorded at filing and moved by a correction of the facts before that
correction's starts apply, so a site-targeted entry names the site it holds at.

Each batch is written in one transaction: subjects, blocks, consumed event ids, and the
new record (or tombstone) of every subject whose list changed, through the builder's
outbox. A redelivered event finds its id consumed and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from events.catalogue import Catalogue, Target
from events.decisions import UNRECORDED_FACTS
from events.envelope import Envelope
from events.identifiers import mask_name
from events.models import BlocklistHeartbeat, CaseCorrected, CaseFacts, CaseFiled, Payload
from events.privacy import SubjectHasher
from events.signing import TrustStore
from events.topics import BLOCKLIST_MEASURES, HEARTBEAT_KEY, blocklist_topic
from services.blocklist.domain import ActiveBlock, ListedCase, Why, entry_for, list_effects, owners
from services.blocklist.ports import BlocklistStore, EndedBlock, ListWrites, MovedSite, NewBlock
from services.consuming import (
    Issuer,
    RawMessage,
    case_id_of,
    decode_or_dead_letter,
    derived_id,
    first_deliveries,
)
from services.departments.domain import Apply, Lift
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
        # The published lists held against a site: a case that moves is published again.
        self.site_lists = frozenset(
            code for code in BLOCKLIST_MEASURES if self.owners[code][1].targets is Target.site
        )
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
            cases = await tx.cases(case_ids)
            active = await tx.active_on(case_ids)
            writes, touched = self._plan(fresh, cases, active, outcome)
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
        cases: dict[str, ListedCase],
        active: set[tuple[str, str]],
        outcome: BuildOutcome,
    ) -> tuple[ListWrites, dict[tuple[str, str], str]]:
        writes = ListWrites(cases=[], sites=[], applied=[], lifted=[], consumed=[], outgoing=[])
        applies: dict[tuple[str, str], NewBlock] = {}
        lifts: dict[tuple[str, str], EndedBlock] = {}
        touched: dict[tuple[str, str], str] = {}  # (measure, subject hash) -> last cause
        for envelope, payload in fresh:
            writes.consumed.append((envelope.id, envelope.type))
            case_id = case_id_of(payload)
            if isinstance(payload, CaseFiled) and case_id not in cases:
                listed = ListedCase(
                    case_id=case_id,
                    subject_hash=self.hasher.hash_id(payload.subject.id),
                    subject_kind=payload.subject.kind,
                    masked_name=mask_name(payload.subject.name),
                    site_hashes=self._site_hashes(payload.facts),
                )
                cases[case_id] = listed
                writes.cases.append((listed, envelope.id))
            elif isinstance(payload, CaseCorrected) and payload.facts is not None:
                self._move_site(
                    case_id,
                    payload.facts,
                    envelope.id,
                    cases=cases,
                    active=active,
                    writes=writes,
                    touched=touched,
                )
            for department, effect in list_effects(self.catalogue, self.owners, payload):
                measure = effect.measure.code
                listed_case = cases.get(case_id)
                if listed_case is None:
                    outcome.unknown_cases += 1  # its case.filed never arrived: nothing to list
                    continue
                key = (measure, case_id)
                if isinstance(effect, Apply) and key not in active:
                    active.add(key)
                    outcome.applied += 1
                    lifts.pop(key, None)  # applied again after a lift: the row is replaced
                    applies[key] = NewBlock(
                        measure,
                        department.code,
                        listed_case,
                        effect.measure.legal_basis,
                        envelope.time,
                        envelope.id,
                        Why.of(effect.decision),
                    )
                elif isinstance(effect, Lift) and key in active:
                    active.discard(key)
                    outcome.lifted += 1
                    lifts[key] = EndedBlock(measure, case_id, envelope.time, envelope.id)
                else:
                    continue
                if measure in BLOCKLIST_MEASURES:
                    touched[(measure, listed_case.subject_hash)] = envelope.id
        writes.applied = list(applies.values())
        writes.lifted = list(lifts.values())
        return writes, touched

    def _move_site(
        self,
        case_id: str,
        facts: CaseFacts,
        cause: str,
        *,
        cases: dict[str, ListedCase],
        active: set[tuple[str, str]],
        writes: ListWrites,
        touched: dict[tuple[str, str], str],
    ) -> None:
        """A correction of the facts may move the case: its site hashes change before the
        correction's starts apply, and every list holding the case at its site is
        published again (the registry also ends and restarts those measures)."""
        listed = cases.get(case_id)
        if listed is None:
            return
        hashes = self._site_hashes(facts)
        if hashes == listed.site_hashes:
            return
        cases[case_id] = replace(listed, site_hashes=hashes)
        writes.sites.append(MovedSite(case_id, hashes, cause))
        for measure, on_case in active:
            if on_case == case_id and measure in self.site_lists:
                touched[(measure, listed.subject_hash)] = cause

    def _site_hashes(self, facts: CaseFacts) -> tuple[str, ...]:
        """A case filed before facts were recorded (upcast from v2) has no site to hold."""
        if facts == UNRECORDED_FACTS:
            return ()
        return tuple(self.hasher.site_hashes(facts.site))

    def _records(
        self, touched: dict[tuple[str, str], str], blocks: Sequence[ActiveBlock]
    ) -> list[OutgoingEvent]:
        """One record per changed (measure, subject): the whole entry, or a tombstone."""
        by_key: dict[tuple[str, str], list[ActiveBlock]] = {key: [] for key in touched}
        for block in blocks:
            by_key[(block.measure, block.case.subject_hash)].append(block)
        records: list[OutgoingEvent] = []
        for (measure, subject_hash), cause in sorted(touched.items()):
            topic = blocklist_topic(measure).name
            identity = f"{CONSUMER}:{measure}:{subject_hash}:{cause}"
            entry = entry_for(
                self.owners[measure][1], self.hasher.key_id, by_key[(measure, subject_hash)]
            )
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
