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

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime

from events.blocklist_head import EMPTY_DIGEST, item_digest, partition_of, xor
from events.catalogue import Catalogue, Target
from events.codec import decoder
from events.decisions import UNRECORDED_FACTS
from events.envelope import Envelope
from events.identifiers import mask_name
from events.models import (
    BlocklistHeartbeat,
    BlocklistLifted,
    CaseFacts,
    CaseFiled,
    Payload,
)
from events.privacy import SubjectHasher
from events.signing import TrustStore
from events.topics import BLOCKLIST_MEASURES, HEARTBEAT_KEY, blocklist_topic
from services.blocklist.domain import (
    ActiveBlock,
    ListedCase,
    ListHashes,
    Why,
    entry_for,
    list_effects,
    owners,
)
from services.blocklist.ports import (
    BlocklistStore,
    BlocklistTransaction,
    EndedBlock,
    Head,
    ListWrites,
    MovedSite,
    NewBlock,
    Published,
)
from services.consumer import Decoded, Events, take
from services.consuming import BatchCounts, Issuer, RawMessage, decode_or_dead_letter
from services.departments.domain import Apply, Effect, InForce, case_ids_in, fold_events
from services.outbox.ports import OutgoingEvent, PendingEvent

CONSUMER = "blocklist_builder"
TOMBSTONE = "redline.blocklist.tombstone"  # only for keys retired with the old subject key


@dataclass
class BuildOutcome(BatchCounts):
    applied: int = 0
    lifted: int = 0
    published: int = 0
    unknown_cases: int = 0


@dataclass(frozen=True)
class ListPlan:
    writes: ListWrites
    touched: dict[tuple[str, str], str]  # (measure, subject hash) -> last cause
    outcome: BuildOutcome


class Builder:
    def __init__(
        self,
        catalogue: Catalogue,
        store: BlocklistStore,
        *,
        trust: TrustStore,
        issuer: Issuer,
        hasher: SubjectHasher,
        list_hashers: Mapping[str, SubjectHasher],
        clock: Callable[[], datetime],
    ) -> None:
        self.catalogue = catalogue
        self.owners = owners(catalogue)
        # The published lists held against a site: a case that moves is published again.
        self.site_lists = frozenset(
            code for code in BLOCKLIST_MEASURES if self.owners[code][1].targets is Target.site
        )
        self.store = store
        self.decode_event = decoder(trust)
        self.issuer = issuer
        self.hasher = hasher
        missing = [m for m in BLOCKLIST_MEASURES if m not in list_hashers]
        if missing:
            raise ValueError(f"no subject key for the list of {missing[0]}")
        # Each published list hashes under its own key (events.subject_keys).
        self.list_hashers = {m: list_hashers[m] for m in BLOCKLIST_MEASURES}
        self.clock = clock

    async def handle(self, messages: Sequence[RawMessage]) -> BuildOutcome:
        return await take(self, messages)

    def decode(self, messages: Sequence[RawMessage]) -> Decoded:
        return Decoded(*decode_or_dead_letter(messages, self.decode_event, CONSUMER, self.issuer))

    def transaction(self) -> AbstractAsyncContextManager[BlocklistTransaction]:
        return self.store.transaction()

    async def read(self, tx: BlocklistTransaction, fresh: Events) -> InForce[ListedCase]:
        case_ids = case_ids_in(fresh)
        return InForce(await tx.cases(case_ids), await tx.active_on(case_ids))

    def plan(self, fresh: Events, state: InForce[ListedCase]) -> ListPlan:
        outcome = BuildOutcome()
        writes, touched = self._plan(fresh, dict(state.cases), set(state.active), outcome)
        return ListPlan(writes, touched, outcome)

    async def apply(
        self, tx: BlocklistTransaction, plan: ListPlan, dead: Sequence[OutgoingEvent]
    ) -> BuildOutcome:
        await tx.write(plan.writes)
        # The new state of every changed list entry, read back after this batch's writes.
        blocks = await tx.listed(sorted(plan.touched))
        outgoing = await self._publish(tx, plan.touched, blocks)
        plan.outcome.published = len(outgoing)
        await tx.enqueue([*outgoing, *dead])
        return plan.outcome

    def _plan(
        self,
        fresh: Events,
        cases: dict[str, ListedCase],
        active: set[tuple[str, str]],
        outcome: BuildOutcome,
    ) -> tuple[ListWrites, dict[tuple[str, str], str]]:
        """The batch's writes, each block's in its final state, and the list entries it
        changes with their last cause."""
        writes = ListWrites(cases=[], sites=[], applied=[], lifted=[], outgoing=[])
        applies: dict[tuple[str, str], NewBlock] = {}
        lifts: dict[tuple[str, str], EndedBlock] = {}
        touched: dict[tuple[str, str], str] = {}  # (measure, subject hash) -> last cause

        def filed(envelope: Envelope, payload: CaseFiled) -> ListedCase:
            listed = self._listed_case(payload)
            writes.cases.append((listed, envelope.id))
            return listed

        def corrected(envelope: Envelope, listed: ListedCase, facts: CaseFacts) -> ListedCase:
            moved = self._moved(listed, facts)
            if moved is not listed:
                writes.sites.append(
                    MovedSite(listed.case_id, moved.site_hashes, envelope.id, moved.lists)
                )
                touched.update(dict.fromkeys(self._held_at_site(listed, active), envelope.id))
            return moved

        steps = fold_events(
            fresh, cases, active, asks=self._wanted, filed=filed, corrected=corrected
        )
        for step in steps:
            if step.case is None:
                outcome.unknown_cases += len(step.wanted)  # its case.filed never arrived
                continue
            for effect in step.changes:
                measure = effect.measure.code
                key = (measure, step.case_id)
                if isinstance(effect, Apply):
                    outcome.applied += 1
                    lifts.pop(key, None)  # applied again after a lift: the row is replaced
                    applies[key] = self._new_block(effect, step.case, step.envelope)
                else:
                    outcome.lifted += 1
                    lifts[key] = EndedBlock(
                        measure, step.case_id, step.envelope.time, step.envelope.id
                    )
                if measure in BLOCKLIST_MEASURES:
                    touched[(measure, step.case.subject_hash)] = step.envelope.id
        writes.applied = list(applies.values())
        writes.lifted = list(lifts.values())
        return writes, touched

    def _wanted(self, payload: Payload) -> list[Effect]:
        """What `payload` asks of the lists, of every department owning a list."""
        return [effect for _, effect in list_effects(self.catalogue, self.owners, payload)]

    def _listed_case(self, filed: CaseFiled) -> ListedCase:
        """The case as the builder keeps it: its subject and site as keyed hashes."""
        return ListedCase(
            case_id=filed.case_id,
            subject_hash=self.hasher.hash_id(filed.subject.id),
            subject_kind=filed.subject.kind,
            masked_name=mask_name(filed.subject.name),
            site_hashes=self._site_hashes(filed.facts),
            lists=self._list_hashes(filed.subject.id, filed.facts),
        )

    def _new_block(self, effect: Apply, listed: ListedCase, envelope: Envelope) -> NewBlock:
        measure = effect.measure
        return NewBlock(
            measure.code,
            self.owners[measure.code][0].code,
            listed,
            measure.legal_basis,
            envelope.time,
            envelope.id,
            Why.of(effect.decision),
        )

    def _moved(self, listed: ListedCase, facts: CaseFacts) -> ListedCase:
        """The case held where the corrected `facts` say, before the correction's starts
        apply (itself when its site is the same)."""
        hashes = self._site_hashes(facts)
        if hashes == listed.site_hashes:
            return listed
        lists = tuple(
            replace(on, site_hashes=self._list_site_hashes(on.measure, facts))
            for on in listed.lists
        )
        return replace(listed, site_hashes=hashes, lists=lists)

    def _held_at_site(
        self, listed: ListedCase, active: set[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The list entries holding the case at its site: a case that moves is published
        again there (the registry also ends and restarts those measures)."""
        return [
            (measure, listed.subject_hash)
            for measure, on_case in active
            if on_case == listed.case_id and measure in self.site_lists
        ]

    def _site_hashes(self, facts: CaseFacts) -> tuple[str, ...]:
        """A case filed before facts were recorded (upcast from v2) has no site to hold."""
        if facts == UNRECORDED_FACTS:
            return ()
        return tuple(self.hasher.site_hashes(facts.site))

    def _list_hashes(self, subject_id: str, facts: CaseFacts) -> tuple[ListHashes, ...]:
        """The subject and site under every published list's own key."""
        return tuple(
            ListHashes(m, hasher.hash_id(subject_id), self._list_site_hashes(m, facts))
            for m, hasher in self.list_hashers.items()
        )

    def _list_site_hashes(self, measure: str, facts: CaseFacts) -> tuple[str, ...]:
        if facts == UNRECORDED_FACTS:
            return ()
        return tuple(self.list_hashers[measure].site_hashes(facts.site))

    async def _publish(
        self,
        tx: BlocklistTransaction,
        touched: dict[tuple[str, str], str],
        blocks: Sequence[ActiveBlock],
    ) -> list[OutgoingEvent]:
        """One record per changed (measure, subject): the whole entry, or a signed lift;
        each with the next list version, and the heads of the partitions they land in."""
        if not touched:
            return []
        by_key: dict[tuple[str, str], list[ActiveBlock]] = {key: [] for key in touched}
        for block in blocks:
            by_key[(block.measure, block.case.subject_hash)].append(block)
        subjects = await tx.subjects(sorted({subject for _, subject in touched}))
        list_key = {
            (measure, subject): subjects[subject].on(measure).subject_hash
            for measure, subject in touched
        }
        before = await tx.published(sorted({(m, key) for (m, _), key in list_key.items()}))
        versions = await tx.next_versions(len(touched))
        partitions = {
            (m, partition_of(list_key[(m, s)], blocklist_topic(m).partitions)) for m, s in touched
        }
        heads: dict[tuple[str, int], Head] = {
            where: (0, EMPTY_DIGEST) for where in partitions
        } | await tx.heads(sorted(partitions))
        rows: list[Published] = []
        records: list[OutgoingEvent] = []
        for ((measure, subject), cause), version in zip(
            sorted(touched.items()), versions, strict=True
        ):
            topic = blocklist_topic(measure)
            key = list_key[(measure, subject)]
            partition = partition_of(key, topic.partitions)
            identity = f"{CONSUMER}:{measure}:{key}:{cause}"
            key_id = self.list_hashers[measure].key_id
            entry = entry_for(self.owners[measure][1], key_id, by_key[(measure, subject)], version)
            payload: Payload = entry or BlocklistLifted(
                measure=measure, subject_hash=key, key_id=key_id, version=version
            )
            records.append(self.issuer.event(payload, topic=topic.name, key=key, identity=identity))
            entries, digest = heads[(measure, partition)]
            previous = before.get((measure, key))
            if previous is not None and previous.listed:
                entries, digest = entries - 1, xor(digest, item_digest(key, previous.version))
            if entry is not None:
                entries, digest = entries + 1, xor(digest, item_digest(key, version))
            heads[(measure, partition)] = (entries, digest)
            rows.append(Published(measure, key, partition, version, entry is not None))
        await tx.record_published(rows, heads)
        return records

    def heartbeats(
        self, as_of: datetime, heads: Mapping[tuple[str, int], Head]
    ) -> list[PendingEvent]:
        """A signed heartbeat for every partition of every published list, carrying the
        partition's head as of the tables the caller read `heads` from."""
        beats: list[PendingEvent] = []
        for measure in BLOCKLIST_MEASURES:
            topic = blocklist_topic(measure).name
            for partition in range(blocklist_topic(measure).partitions):
                entries, digest = heads.get((measure, partition), (0, EMPTY_DIGEST))
                beat = BlocklistHeartbeat(
                    measure=measure,
                    partition=partition,
                    key_id=self.list_hashers[measure].key_id,
                    as_of=as_of,
                    entries=entries,
                    digest=digest,
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
