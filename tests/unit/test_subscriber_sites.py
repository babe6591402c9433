"""Checks for a subject AT a site: supply is refused at the site of the illegal project or
premises only, loans wherever the subject asks, on a replica fed real signed records."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.subscriber.errors import ConfigError, InvalidInput
from connectors.subscriber.records import RawRecord
from connectors.subscriber.replica import Replica
from connectors.subscriber.results import Blocked, Clear, Stale
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import Deployment, ManualClock, record
from connectors.subscriber.view import BlocklistView, keyring_id
from events.catalogue import Target, load_catalogue
from events.models import Site
from events.topics import blocklist_topic
from tests.support import new_parcel_code, new_unit_code, new_uscc
from tests.unit.builders import POWER, SUBSCRIBER, cases_behind

LOANS = "refuse_loans"
FACTORY_PREMISES = "孝义市兑镇镇东村北侧3号厂房"
HOME = "孝义市梧桐镇西村12号"


class Feed:
    """Records at broker-like offsets, per measure and partition."""

    def __init__(self, subscriber: Subscriber, deployment: Deployment) -> None:
        self.subscriber = subscriber
        self.factory = deployment.factory
        self.next: dict[tuple[str, int], int] = defaultdict(int)

    def _at(self, measure: str, partition: int, key: bytes, value: bytes | None) -> RawRecord:
        offset = self.next[(measure, partition)]
        self.next[(measure, partition)] += 1
        return record(measure, partition, offset, key, value)

    def entry(
        self, measure: str, subject: str, *sites: Site, case_ids: tuple[str, ...] = ()
    ) -> None:
        ids = case_ids or tuple(f"case-{n}" for n in range(len(sites) or 1))
        key, value, _ = self.factory.entry(measure, subject, case_ids=ids, sites=sites)
        where = self.factory.partition(measure, subject)
        self.subscriber.apply_records([self._at(measure, where, key, value)])

    def vouch(self, at: float) -> None:
        moment = datetime.fromtimestamp(at, UTC)
        for measure in self.subscriber.measures:
            self.subscriber.apply_records(
                [
                    self._at(measure, p, *self.factory.heartbeat(measure, p, moment))
                    for p in range(blocklist_topic(measure).partitions)
                ]
            )


@pytest.fixture
def subscriber(deployment: Deployment, clock: ManualClock) -> Subscriber:
    return Subscriber(deployment.config(SUBSCRIBER, (POWER, LOANS)), clock=clock)


@pytest.fixture
def feed(subscriber: Subscriber, deployment: Deployment, clock: ManualClock) -> Feed:
    feed = Feed(subscriber, deployment)
    feed.vouch(clock.now)
    return feed


def test_the_catalogue_says_which_measures_need_a_site(subscriber: Subscriber) -> None:
    measures = load_catalogue().measures()
    assert subscriber.by_site(POWER) is (measures[POWER].targets is Target.site) is True
    assert subscriber.by_site(LOANS) is (measures[LOANS].targets is Target.site) is False


def test_power_is_refused_at_the_cases_unit_and_by_its_location_text(
    subscriber: Subscriber, feed: Feed
) -> None:
    subject, unit = new_uscc(), new_unit_code()
    feed.entry(POWER, subject, Site(location=FACTORY_PREMISES, real_estate_unit=unit))

    by_unit = subscriber.check(POWER, subject, unit.lower())
    assert isinstance(by_unit, Blocked)
    assert by_unit.target is Target.site
    assert [case.case_id for case in by_unit.cases] == ["case-0"]
    # The same address, spelt with white space and a full-width digit, is one location.
    by_text = subscriber.check(POWER, subject, " 孝义市兑镇镇 东村北侧３号厂房 ")
    assert isinstance(by_text, Blocked)
    assert subscriber.check(POWER, new_uscc(), unit) == Clear(POWER)  # not on the list
    # The unit code typed with a Chinese input method (full width), or grouped with spaces,
    # is still the unit: never an unmatched address answered "blocked elsewhere".
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in unit)
    grouped = f"{unit[:6]} {unit[6:12]} {unit[12:19]} {unit[19:]}"
    for typed in (full_width, grouped):
        assert isinstance(subscriber.check(POWER, subject, typed), Blocked), typed


def test_at_the_subjects_other_address_power_is_clear_and_says_only_blocked_elsewhere(
    subscriber: Subscriber, feed: Feed
) -> None:
    subject = new_uscc()
    feed.entry(POWER, subject, Site(location=FACTORY_PREMISES, real_estate_unit=new_unit_code()))

    for elsewhere in (HOME, new_unit_code(), new_parcel_code()):
        answer = subscriber.check(POWER, subject, elsewhere)
        assert answer == Clear(POWER, blocked_elsewhere=True)
        assert answer.as_json() == {"status": "clear", "measure": POWER, "blocked_elsewhere": True}


def test_of_two_cases_at_two_sites_a_check_names_only_the_case_at_its_site(
    subscriber: Subscriber, feed: Feed
) -> None:
    subject, first, second = new_uscc(), new_unit_code(), new_unit_code()
    feed.entry(
        POWER,
        subject,
        Site(location="厂房一", real_estate_unit=first),
        Site(location="厂房二", real_estate_unit=second),
        case_ids=("case-first", "case-second"),
    )
    assert cases_behind(subscriber.check(POWER, subject, second)) == ["case-second"]


def test_a_unit_on_the_parcel_of_a_parcel_coded_case_is_blocked(
    subscriber: Subscriber, feed: Feed
) -> None:
    subject, parcel = new_uscc(), new_parcel_code()
    feed.entry(POWER, subject, Site(location="某村空地上的厂房", parcel_code=parcel))

    assert isinstance(subscriber.check(POWER, subject, new_unit_code(parcel)), Blocked)
    assert isinstance(subscriber.check(POWER, subject, parcel), Blocked)
    assert subscriber.check(POWER, subject, new_unit_code()) == Clear(POWER, blocked_elsewhere=True)


def test_another_unit_on_the_parcel_of_a_unit_coded_case_is_clear(
    subscriber: Subscriber, feed: Feed
) -> None:
    subject, parcel = new_uscc(), new_parcel_code()
    unit, neighbour = new_unit_code(parcel), new_unit_code(parcel)
    feed.entry(POWER, subject, Site(location=FACTORY_PREMISES, real_estate_unit=unit))

    assert isinstance(subscriber.check(POWER, subject, unit), Blocked)
    elsewhere = Clear(POWER, blocked_elsewhere=True)
    assert subscriber.check(POWER, subject, neighbour) == elsewhere
    assert subscriber.check(POWER, subject, parcel) == elsewhere  # the unit, not the parcel


def test_loans_are_refused_wherever_the_subject_asks(subscriber: Subscriber, feed: Feed) -> None:
    subject = new_uscc()
    feed.entry(LOANS, subject)
    for site in (None, HOME, new_unit_code(), "  "):
        answer = subscriber.check(LOANS, subject, site)
        assert isinstance(answer, Blocked), site
        assert answer.target is Target.subject
    assert subscriber.check(LOANS, new_uscc()) == Clear(LOANS)


def test_a_check_of_power_without_a_site_is_refused_naming_site(
    subscriber: Subscriber, feed: Feed, clock: ManualClock
) -> None:
    subject = new_uscc()
    feed.entry(POWER, subject, Site(location=FACTORY_PREMISES))
    for listed in (subject, new_uscc()):  # whether or not the subject is on the list
        for missing in (None, "", " \t"):
            with pytest.raises(InvalidInput) as refused:
                subscriber.check(POWER, listed, missing)
            assert refused.value.field == "site"
            assert "required for refuse_power_supply" in refused.value.reason
            assert "held against the site" in refused.value.reason
    clock.now += 3600  # stale: bad input is still bad input
    with pytest.raises(InvalidInput, match="site"):
        subscriber.check(POWER, subject)


def test_stale_answers_keep_what_was_known_at_that_site(
    subscriber: Subscriber, feed: Feed, clock: ManualClock
) -> None:
    subject, unit = new_uscc(), new_unit_code()
    feed.entry(POWER, subject, Site(location=FACTORY_PREMISES, real_estate_unit=unit))
    clock.now += 3600

    here = subscriber.check(POWER, subject, unit)
    assert isinstance(here, Stale) and isinstance(here.last_known, Blocked)
    there = subscriber.check(POWER, subject, HOME)
    assert isinstance(there, Stale)
    assert there.last_known == Clear(POWER, blocked_elsewhere=True)


def test_a_site_entry_without_site_hashes_blocks_at_no_site(
    subscriber: Subscriber, feed: Feed
) -> None:
    """An entry from before sites were published (upcast from v1) names no site."""
    subject = new_uscc()
    feed.entry(POWER, subject)
    assert subscriber.check(POWER, subject, HOME) == Clear(POWER, blocked_elsewhere=True)


def test_the_replica_keeps_site_hashes_never_the_site(
    subscriber: Subscriber, feed: Feed, deployment: Deployment
) -> None:
    subject, unit = new_uscc(), new_unit_code()
    site = Site(location=FACTORY_PREMISES, real_estate_unit=unit)
    feed.entry(POWER, subject, site)
    dump = "\n".join(subscriber.replica()._db.iterdump())
    assert unit not in dump and FACTORY_PREMISES not in dump and subject not in dump
    for digest in deployment.factory.site_hashes(site, POWER):
        assert digest in dump


_SCHEMA_1 = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries (
    measure TEXT NOT NULL, subject BLOB NOT NULL, subject_kind TEXT NOT NULL,
    masked_name TEXT NOT NULL, department TEXT NOT NULL, cases TEXT NOT NULL,
    event_id TEXT NOT NULL, kafka_partition INTEGER NOT NULL, kafka_offset INTEGER NOT NULL,
    PRIMARY KEY (measure, subject)
) WITHOUT ROWID;
CREATE TABLE partitions (
    topic TEXT NOT NULL, kafka_partition INTEGER NOT NULL, measure TEXT NOT NULL,
    next_offset INTEGER, heartbeat_at REAL, heartbeat_as_of TEXT,
    PRIMARY KEY (topic, kafka_partition)
);
"""


def _schema_1_replica(path: Path, key_id: str) -> None:
    """A replica as the connector before sites wrote it: one entry, offsets past it."""
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA_1)
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("schema_version", "1"), ("key_id", key_id), ("measures", json.dumps([POWER]))],
    )
    cases = '[{"case_id":"case-old","legal_basis":"seed","since":"2026-10-12T00:00:00+00:00"}]'
    db.execute(
        "INSERT INTO entries VALUES (?, ?, 'organization', '孝***', 'power_supply', ?, 'e1', 0, 4)",
        (POWER, bytes(32), cases),
    )
    topic = blocklist_topic(POWER).name
    db.executemany(
        "INSERT INTO partitions VALUES (?, ?, ?, 5, 1.0, '2026-10-12T00:00:00+00:00')",
        [(topic, p, POWER) for p in range(3)],
    )
    db.commit()
    db.close()


def test_a_replica_of_the_older_schema_is_refused_by_readers_and_rebuilt_by_the_daemon(
    deployment: Deployment, tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "old.sqlite3"
    ids = {POWER: deployment.factory.ids(POWER)}
    _schema_1_replica(path, keyring_id(ids))
    with pytest.raises(ConfigError) as refused:
        BlocklistView(path, ids, (POWER,))
    assert refused.value.field == "replica" and "older connector" in refused.value.reason

    daemon = Subscriber(deployment.config(SUBSCRIBER, (POWER,), replica=path), clock=clock)
    assert daemon.replica().counts() == {}  # read again from the start of the topic
    assert set(daemon.offsets().values()) == {None}
    assert daemon.replica().meta()["schema_version"] == "3"
    assert isinstance(daemon.check(POWER, new_uscc(), HOME), Stale)  # until heartbeats
    feed = Feed(daemon, deployment)
    subject, unit = new_uscc(), new_unit_code()
    feed.entry(POWER, subject, Site(location=FACTORY_PREMISES, real_estate_unit=unit))
    feed.vouch(clock.now)
    assert isinstance(daemon.check(POWER, subject, unit), Blocked)
    daemon.stop()
    Replica.open(path).close()  # a reader opens the rebuilt file
