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

import abc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from events.blocklist_head import EMPTY_DIGEST, item_digest, partition_of, xor
from events.catalogue import Catalogue, Target
from events.decisions import UNRECORDED_FACTS
from events.identifiers import mask_name
from events.models import (
    BlocklistHeartbeat,
    BlocklistLifted,
    CaseCorrected,
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
from services.consumer import Consumed, Decoded, Events, take
from services.consuming import Issuer, RawMessage, case_id_of, decode_or_dead_letter
from services.departments.domain import Apply, fold_blocks
from services.outbox.ports import OutgoingEvent, PendingEvent

CONSUMER = "blocklist_builder"
TOMBSTONE = "redline.blocklist.tombstone"  # only for keys retired with the old subject key


class ListTransaction(BlocklistTransaction):
    """The builder's transaction in the consumer skeleton: it claims event ids too."""

    @abc.abstractmethod
    async def claim(self, events: Sequence[Consumed]) -> set[str]: ...


@dataclass(frozen=True)
class Listed:
    """What the builder's plan needs of the store: the batch's cases and blocks in force."""

    cases: dict[str, ListedCase]
    active: set[tuple[str, str]]


@dataclass
class BuildOutcome:
    applied: int = 0
    lifted: int = 0
    published: int = 0
    duplicates: int = 0
    unknown_cases: int = 0
    dead_letters: list[str] = field(default_factory=list)


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
        self.trust = trust
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
        return Decoded(*decode_or_dead_letter(messages, self.trust, CONSUMER, self.issuer))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ListTransaction]:
        async with self.store.transaction() as tx:
            if not isinstance(tx, ListTransaction):
                raise TypeError(
                    "the builder's store must claim event ids "
                    "(services.consumer.postgres.ClaimingBlocklistStore)"
                )
            yield tx

    async def read(self, tx: ListTransaction, fresh: Events) -> Listed:
        case_ids = sorted({case_id_of(p) for _, p in fresh} - {""})
        return Listed(await tx.cases(case_ids), await tx.active_on(case_ids))

    def plan(self, fresh: Events, state: Listed) -> ListPlan:
        outcome = BuildOutcome()
        writes, touched = self._plan(fresh, dict(state.cases), set(state.active), outcome)
        writes.consumed = []  # claimed before the plan (services.consumer.take)
        return ListPlan(writes, touched, outcome)

    async def apply(
        self, tx: ListTransaction, plan: ListPlan, dead: Sequence[OutgoingEvent]
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
                    lists=self._list_hashes(payload.subject.id, payload.facts),
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
            wanted = [effect for _, effect in list_effects(self.catalogue, self.owners, payload)]
            listed_case = cases.get(case_id)
            if listed_case is None:
                outcome.unknown_cases += len(wanted)  # its case.filed never arrived
                continue
            for effect in fold_blocks(active, case_id, wanted):
                measure = effect.measure.code
                key = (measure, case_id)
                if isinstance(effect, Apply):
                    outcome.applied += 1
                    lifts.pop(key, None)  # applied again after a lift: the row is replaced
                    applies[key] = NewBlock(
                        measure,
                        self.owners[measure][0].code,
                        listed_case,
                        effect.measure.legal_basis,
                        envelope.time,
                        envelope.id,
                        Why.of(effect.decision),
                    )
                else:
                    outcome.lifted += 1
                    lifts[key] = EndedBlock(measure, case_id, envelope.time, envelope.id)
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
        lists = tuple(
            replace(on, site_hashes=self._list_site_hashes(on.measure, facts))
            for on in listed.lists
        )
        cases[case_id] = replace(listed, site_hashes=hashes, lists=lists)
        writes.sites.append(MovedSite(case_id, hashes, cause, lists))
        for measure, on_case in active:
            if on_case == case_id and measure in self.site_lists:
                touched[(measure, listed.subject_hash)] = cause

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
