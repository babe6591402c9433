"""Real signed blocklist records without the core: for tests, and for a supplier trying
its integration before it is connected to the centre.

`Deployment` makes what an operator would hand a subscriber (subject key, trust store,
the subscriber's signing key) in a directory; `RecordFactory` signs entries, heartbeats
and tombstones as the blocklist builder does, under the same contract.
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
from events.catalogue import Fact, Target, load_catalogue
from events.codec import encode_signed
from events.identifiers import mask_name
from events.models import BlocklistCase, BlocklistEntry, BlocklistHeartbeat, Site
from events.privacy import SubjectHasher, parse_subject_id
from events.signing import Signer, TrustedKey, TrustStore
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

    def __init__(self, ids: SubjectIds, signer: Signer | None = None) -> None:
        self.ids = ids
        self.signer = signer or Signer.generate(f"{BUILDER}-test")

    def trusted_key(self) -> TrustedKey:
        return TrustedKey(
            key_id=self.signer.key_id,
            issuer=BUILDER,
            source=BUILDER_SOURCE,
            public_key_b64=self.signer.public_key_b64(),
            may_issue=("redline.blocklist.*",),
        )

    def subject_hash(self, subject_id: str) -> str:
        return self.ids.digest(parse_subject_id(subject_id)[1]).hex()

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
    ) -> tuple[bytes, bytes, str]:
        """(key, value, event id) of an entry; `sites` are the cases' sites in order (a
        case without one holds at no site); `key_id`/`entry_measure` override to forge."""
        kind, _ = parse_subject_id(subject_id)
        subject_hash = self.subject_hash(subject_id)
        target = target or TARGETS.get(measure, Target.subject)
        hashes = [self.site_hashes(site) for site in sites] if target is Target.site else []
        payload = BlocklistEntry(
            measure=entry_measure or measure,
            department=DEPARTMENTS.get(measure, "power_supply"),
            target=target,
            subject_hash=subject_hash,
            key_id=key_id or self.ids.key_id,
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
        )
        envelope, raw = encode_signed(
            payload, self.signer, source=BUILDER_SOURCE, subject=subject_hash
        )
        return subject_hash.encode(), raw, envelope.id

    def site_hashes(self, site: Site) -> list[str]:
        """What the builder lists for a case at `site`."""
        return self.ids.hasher.site_hashes(site)

    def tombstone(self, subject_id: str) -> tuple[bytes, None]:
        return self.subject_hash(subject_id).encode(), None

    def heartbeat(
        self, measure: str, partition: int, as_of: datetime | None = None
    ) -> tuple[bytes, bytes]:
        payload = BlocklistHeartbeat(
            measure=measure,
            partition=partition,
            key_id=self.ids.key_id,
            as_of=as_of or datetime.now(UTC),
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
        factory = RecordFactory(SubjectIds.from_file(subject_key))
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
