"""Real signed blocklist records without the core: for tests, and for a supplier trying
its integration before it is connected to the centre.

`Deployment` makes what an operator would hand a subscriber (subject key, trust store,
the subscriber's signing key) in a directory; `RecordFactory` signs entries, lifts and
heartbeats (with each partition's list head) as the blocklist builder does, under the
same contract: each measure's hashes under its own derived key, every record with the
next list version, each subject in the partition Kafka's default partitioner picks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.records import RawRecord
from connectors.subscriber.subjects import SubjectIds
from events.blocklist_head import EMPTY_DIGEST, item_digest, partition_of, xor
from events.catalogue import Fact, Target, load_catalogue
from events.codec import encode_signed
from events.identifiers import mask_name
from events.models import BlocklistCase, BlocklistEntry, BlocklistHeartbeat, BlocklistLifted, Site
from events.privacy import SubjectHasher, parse_subject_id
from events.signing import Signer, TrustedKey, TrustStore
from events.subject_keys import derive_measure_key
from events.topics import HEARTBEAT_KEY, blocklist_topic

BUILDER = "blocklist_builder"
BUILDER_SOURCE = f"/authorities/{BUILDER}"
SUBSCRIBER_MAY_ISSUE = ("redline.measure.applied.*", "redline.deadletter.*")
LEGAL_BASIS = "供水、供电、燃气等企业对违法建设项目不得提供水、电、气服务 (seed §三)"
RULE = "land in cultivated or permanent_basic_farmland and (business_premises)"
# Each list's department and target, as the catalogue says.
DEPARTMENTS = {code: d.code for code, d in load_catalogue().blocklist_measures().items()}
TARGETS = {code: m.targets for code, m in load_catalogue().measures().items()}


class RecordFactory:
    """Signs blocklist records as the builder would; `key` and `value` are Kafka bytes."""

    def __init__(self, master_key: bytes, signer: Signer | None = None) -> None:
        self.master_key = master_key
        self.signer = signer or Signer.generate(f"{BUILDER}-test")
        self._ids: dict[str, SubjectIds] = {}
        self.version = 0
        # What the builder has published: (measure, subject hash) -> (version, listed).
        self.published: dict[tuple[str, str], tuple[int, bool]] = {}

    def ids(self, measure: str) -> SubjectIds:
        """The subject IDs hashed under `measure`'s own key."""
        if measure not in self._ids:
            self._ids[measure] = SubjectIds(derive_measure_key(self.master_key, measure))
        return self._ids[measure]

    def partition(self, measure: str, subject_id: str) -> int:
        """Where the builder's records of this subject go (Kafka's default partitioner)."""
        key = self.subject_hash(subject_id, measure)
        return partition_of(key, blocklist_topic(measure).partitions)

    def _next_version(self) -> int:
        self.version += 1
        return self.version

    def trusted_key(self) -> TrustedKey:
        return TrustedKey(
            key_id=self.signer.key_id,
            issuer=BUILDER,
            source=BUILDER_SOURCE,
            public_key_b64=self.signer.public_key_b64(),
            may_issue=("redline.blocklist.*",),
        )

    def subject_hash(self, subject_id: str, measure: str) -> str:
        return self.ids(measure).digest(parse_subject_id(subject_id)[1]).hex()

    def entry(
        self,
        measure: str,
        subject_id: str,
        *,
        case_ids: tuple[str, ...] = ("case-1",),
        sites: Sequence[Site] = (),
        name: str = "孝义市某建材有限公司",
        key_id: str | None = None,
        entry_measure: str | None = None,
        target: Target | None = None,
        since: datetime | None = None,
        version: int | None = None,
    ) -> tuple[bytes, bytes, str]:
        """(key, value, event id) of an entry; `sites` are the cases' sites in order (a
        case without one holds at no site); `key_id`/`entry_measure` override to forge,
        `version` to replay (neither is then counted in the heads)."""
        kind, _ = parse_subject_id(subject_id)
        subject_hash = self.subject_hash(subject_id, measure)
        target = target or TARGETS.get(measure, Target.subject)
        hashes = (
            [self.site_hashes(site, measure) for site in sites] if target is Target.site else []
        )
        genuine = key_id is None and entry_measure is None and version is None
        version = self._next_version() if version is None else version
        payload = BlocklistEntry(
            measure=entry_measure or measure,
            department=DEPARTMENTS.get(measure, "power_supply"),
            target=target,
            subject_hash=subject_hash,
            key_id=key_id or self.ids(measure).key_id,
            subject_kind=kind,
            masked_name=mask_name(name),
            cases=[
                BlocklistCase(
                    case_id=case_id,
                    legal_basis=LEGAL_BASIS,
                    since=since or datetime(2026, 10, 12, tzinfo=UTC),
                    rule=RULE,
                    facts=(Fact.business_premises,),
                    site_hashes=hashes[number] if number < len(hashes) else [],
                )
                for number, case_id in enumerate(case_ids)
            ],
            version=version,
        )
        envelope, raw = encode_signed(
            payload, self.signer, source=BUILDER_SOURCE, subject=subject_hash
        )
        if genuine:
            self.published[(measure, subject_hash)] = (version, True)
        return subject_hash.encode(), raw, envelope.id

    def site_hashes(self, site: Site, measure: str) -> list[str]:
        """What the builder lists for a case at `site` on `measure`'s list."""
        return self.ids(measure).hasher.site_hashes(site)

    def lift(
        self,
        measure: str,
        subject_id: str,
        *,
        signer: Signer | None = None,
        version: int | None = None,
    ) -> tuple[bytes, bytes]:
        """A signed lift (by `signer` to forge one, at `version` to replay one)."""
        subject_hash = self.subject_hash(subject_id, measure)
        genuine = signer is None and version is None
        version = self._next_version() if version is None else version
        payload = BlocklistLifted(
            measure=measure,
            subject_hash=subject_hash,
            key_id=self.ids(measure).key_id,
            version=version,
        )
        _, raw = encode_signed(
            payload, signer or self.signer, source=BUILDER_SOURCE, subject=subject_hash
        )
        if genuine:
            self.published[(measure, subject_hash)] = (version, False)
        return subject_hash.encode(), raw

    def tombstone(self, subject_id: str, measure: str) -> tuple[bytes, None]:
        """An unsigned tombstone, as anyone able to write the topic could write it."""
        return self.subject_hash(subject_id, measure).encode(), None

    def head(self, measure: str, partition: int) -> tuple[int, str]:
        """The partition's list head over everything published through this factory."""
        entries, digest = 0, EMPTY_DIGEST
        count = blocklist_topic(measure).partitions
        for (on, subject_hash), (version, listed) in self.published.items():
            if on == measure and listed and partition_of(subject_hash, count) == partition:
                entries, digest = entries + 1, xor(digest, item_digest(subject_hash, version))
        return entries, digest

    def heartbeat(
        self,
        measure: str,
        partition: int,
        as_of: datetime | None = None,
        *,
        head: tuple[int, str] | None = None,
    ) -> tuple[bytes, bytes]:
        entries, digest = head or self.head(measure, partition)
        payload = BlocklistHeartbeat(
            measure=measure,
            partition=partition,
            key_id=self.ids(measure).key_id,
            as_of=as_of or datetime.now(UTC),
            entries=entries,
            digest=digest,
        )
        _, raw = encode_signed(payload, self.signer, source=BUILDER_SOURCE, subject=HEARTBEAT_KEY)
        return HEARTBEAT_KEY.encode(), raw


def record(
    measure: str, partition: int, offset: int, key: bytes | None, value: bytes | None
) -> RawRecord:
    """A record as if read from `measure`'s topic at (partition, offset)."""
    return RawRecord(blocklist_topic(measure).name, partition, offset, key, value)


@dataclass(frozen=True)
class Deployment:
    """Key material for subscribers in a directory, as an operator would provision it:
    one subject key, one trust store (builder and subscribers), a signing key each."""

    directory: Path
    subject_key: Path
    trust_store: Path
    signers: dict[str, Signer]
    factory: RecordFactory
    trust: TrustStore

    @classmethod
    def create(cls, directory: Path, *subscribers: str) -> Deployment:
        directory.mkdir(parents=True, exist_ok=True)
        subject_key = directory / "subject.key"
        SubjectHasher.create_file(subject_key)
        factory = RecordFactory(bytes.fromhex(subject_key.read_text().strip()))
        signers = {name: Signer.generate(f"{name}-test") for name in subscribers}
        trust = TrustStore(
            [
                factory.trusted_key(),
                *(
                    TrustedKey(
                        key_id=signer.key_id,
                        issuer=name,
                        source=f"/authorities/{name}",
                        public_key_b64=signer.public_key_b64(),
                        may_issue=SUBSCRIBER_MAY_ISSUE,
                    )
                    for name, signer in signers.items()
                ),
            ]
        )
        trust_store = directory / "truststore.yaml"
        trust.dump(trust_store)
        for name, signer in signers.items():
            (directory / f"{name}.pem").write_bytes(signer.private_pem())
        return cls(directory, subject_key, trust_store, signers, factory, trust)

    def config(
        self,
        name: str,
        measures: tuple[str, ...],
        *,
        bootstrap: str = "127.0.0.1:9",
        replica: Path | None = None,
        signed: bool = True,
        freshness_bound: float = 30.0,
        webhook_url: str | None = None,
    ) -> SubscriberConfig:
        """A subscriber's settings; `signed` needs `name` among those created."""
        return SubscriberConfig(
            name=name,
            measures=measures,
            bootstrap=bootstrap,
            replica=replica or self.directory / f"{name}.sqlite3",
            trust_store=self.trust_store,
            subject_key=self.subject_key,
            signing_key=self.directory / f"{name}.pem" if signed else None,
            signing_key_id=self.signers[name].key_id if signed else None,
            freshness_bound=freshness_bound,
            webhook_url=webhook_url,
        )


class ManualClock:
    """A clock a test moves by hand (`clock.now += 31`), for the freshness rules."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now
