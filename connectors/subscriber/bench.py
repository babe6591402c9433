"""Measure in-process check throughput on a replica of many blocked subjects.

    .venv/bin/python -m connectors.subscriber.bench --subjects 1000000 --lookups 1000000

Builds a throw-away replica (the same `Replica.apply` the consumer uses, without
signatures), marks it fresh, then times `check()` at a site for subjects not on the list
(the common path: no SQLite I/O, the site is not even hashed) and for blocked ones (one
SQLite read and the site's hashes each).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from connectors.subscriber.emit import Emitter
from connectors.subscriber.records import Heartbeat, RawRecord, Upsert
from connectors.subscriber.replica import Replica
from connectors.subscriber.subjects import SubjectIds
from connectors.subscriber.view import BlocklistView, keyring_id
from events.catalogue import Target
from events.identifiers import USCC_ALPHABET, uscc_check_character
from events.models import BlocklistCase, BlocklistEntry, Site
from events.privacy import SubjectHasher
from events.topics import blocklist_topic

MEASURE = "refuse_power_supply"  # held against sites: every check names one
BATCH = 50_000
# Every bench block is held at this unit, so a check there is blocked.
SITE = "141181001001GB00001F00000001"


def usccs(count: int, rng: random.Random) -> list[str]:
    alphabet = USCC_ALPHABET
    out = []
    for _ in range(count):
        body = "91" + "".join(rng.choices(alphabet, k=15))
        out.append(body + uscc_check_character(body))
    return out


def build_replica(path: Path, ids: SubjectIds, blocked: list[str]) -> None:
    topic = blocklist_topic(MEASURE)
    replica = Replica.open(path, create=True)
    replica.initialise(
        "bench_subscriber", keyring_id({MEASURE: ids}), (MEASURE,), {MEASURE: (topic.name, 3)}
    )
    emitter = Emitter("bench_subscriber", None, webhooks=False)
    since = datetime(2026, 1, 1, tzinfo=UTC)
    at = ids.hasher.site_hashes(Site(location="孝义市兑镇镇东村北侧厂房", real_estate_unit=SITE))
    case = BlocklistCase.model_construct(
        case_id="case-1",
        legal_basis="seed §三",
        since=since,
        rule="land in cultivated and (business_premises)",
        facts=(),
        site_hashes=at,
    )
    offset = 0
    for start in range(0, len(blocked), BATCH):
        items = []
        for raw in blocked[start : start + BATCH]:
            digest = ids.digest(raw)
            entry = BlocklistEntry.model_construct(
                measure=MEASURE,
                department="power_supply",
                target=Target.site,
                subject_hash=digest.hex(),
                key_id=ids.key_id,
                subject_kind="organization",
                masked_name="某*****公司",
                cases=[case],
                version=offset + 1,
            )
            record = RawRecord(topic.name, offset % 3, offset // 3, None, None)
            items.append(Upsert(record, MEASURE, digest, entry, f"event-{offset}"))
            offset += 1
        replica.apply(items, emitter, time.time())
    now = time.time()
    heads = {p.partition: p for p in replica.partitions()}
    beats = [
        Heartbeat(
            RawRecord(topic.name, p, offset, None, None),
            MEASURE,
            now,
            heads[p].held_entries,
            heads[p].held_digest,
        )
        for p in range(3)
    ]
    replica.apply(beats, emitter, now)
    replica.close()


def _rate(label: str, count: int, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    rate = count / elapsed
    print(f"{label:<42} {rate:>12,.0f} /s  ({elapsed * 1e9 / count:,.0f} ns each)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = random.Random(7)  # noqa: S311 (test data, not secrets)
    with tempfile.TemporaryDirectory() as tmp:
        key_path = Path(tmp) / "subject.key"
        SubjectHasher.create_file(key_path)
        ids = SubjectIds.from_file(key_path)
        print(f"generating {args.subjects:,} blocked and {args.lookups:,} other subjects ...")
        blocked = usccs(args.subjects, rng)
        others = usccs(args.lookups, rng)
        started = time.perf_counter()
        build_replica(Path(tmp) / "replica.sqlite3", ids, blocked)
        print(f"replica built in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        view = BlocklistView(Path(tmp) / "replica.sqlite3", {MEASURE: ids}, (MEASURE,), 3600.0)
        print(f"index of {args.subjects:,} loaded in {time.perf_counter() - started:.2f} s")
        check, normalise, digest = view.check, ids.normalise, ids.digest
        sample = blocked[: min(len(blocked), 100_000)]

        def validate_only() -> None:
            for raw in others:
                normalise(raw)

        def hash_only() -> None:
            for raw in others:
                digest(raw)

        def clear_checks() -> None:
            for raw in others:
                check(MEASURE, raw, SITE)

        def blocked_checks() -> None:
            for raw in sample:
                check(MEASURE, raw, SITE)

        assert check(MEASURE, sample[0], SITE).status == "blocked"
        assert check(MEASURE, others[0], SITE).status == "clear"
        _rate("validate (table-driven)", len(others), validate_only)
        _rate("HMAC-SHA256 (precomputed states)", len(others), hash_only)
        _rate("check at a site, clear (in memory)", len(others), clear_checks)
        _rate("check at a site, blocked (one read)", len(sample), blocked_checks)
        view.close()


if __name__ == "__main__":
    main()
