"""The replica on a temporary SQLite file, fed real signed records without a broker."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.subscriber.emit import Emitter, Outgoing, derived_id
from connectors.subscriber.errors import ConfigError, InvalidInput
from connectors.subscriber.records import RawRecord, Upsert
from connectors.subscriber.replica import Replica
from connectors.subscriber.results import Blocked, Clear, Stale
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import Deployment, ManualClock, RecordFactory, record
from events.catalogue import Target
from events.codec import decode
from events.models import DeadLetter, MeasureApplied
from events.signing import Signer
from events.topics import ACKNOWLEDGEMENTS, DEAD_LETTERS, blocklist_topic
from tests.support import new_uscc
from tests.unit.builders import POWER, PREMISES, SUBSCRIBER, UNIT, cases_behind

LOANS = "refuse_loans"
PARTITIONS = range(3)


class Log:
    """Offsets as a broker would assign them, per partition of one measure's topic."""

    def __init__(self, measure: str = POWER) -> None:
        self.measure = measure
        self.next: dict[int, int] = defaultdict(int)

    def at(self, partition: int, key: bytes | None, value: bytes | None) -> RawRecord:
        offset = self.next[partition]
        self.next[partition] += 1
        return record(self.measure, partition, offset, key, value)

    def heartbeats(self, factory: RecordFactory, as_of: float) -> list[RawRecord]:
        moment = datetime.fromtimestamp(as_of, UTC)
        return [self.at(p, *factory.heartbeat(self.measure, p, moment)) for p in PARTITIONS]


@pytest.fixture
def subscriber(deployment: Deployment, clock: ManualClock) -> Subscriber:
    return Subscriber(
        deployment.config(SUBSCRIBER, (POWER,), webhook_url="http://127.0.0.1:9/"), clock=clock
    )


def _entry(
    deployment: Deployment,
    log: Log,
    subject: str,
    *,
    case_ids: tuple[str, ...] = ("case-1",),
) -> tuple[RawRecord, str]:
    """An entry whose cases are all held at PREMISES, in the subject's partition."""
    key, value, event_id = deployment.factory.entry(
        log.measure, subject, case_ids=case_ids, sites=(PREMISES,) * len(case_ids)
    )
    return log.at(deployment.factory.partition(log.measure, subject), key, value), event_id


def _subject_on(factory: RecordFactory, partition: int) -> str:
    """A subject whose records the builder puts in `partition`."""
    while True:
        subject = new_uscc()
        if factory.partition(POWER, subject) == partition:
            return subject


def _events(subscriber: Subscriber, deployment: Deployment) -> list[tuple[Outgoing, object]]:
    return [
        (event, decode(event.value, deployment.trust)[1])
        for _, event in subscriber.replica().pending_events(1000)
    ]


def test_an_entry_blocks_its_subject_with_its_cases_and_legal_basis(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    log, subject = Log(), new_uscc()
    entry, _ = _entry(deployment, log, subject, case_ids=("case-a", "case-b"))
    subscriber.apply_records([entry, *log.heartbeats(deployment.factory, clock.now)])

    result = subscriber.check(POWER, subject.lower(), UNIT)
    assert isinstance(result, Blocked)
    assert result.masked_name == "孝*********"
    assert result.subject_kind == "organization"
    assert result.department == "power_supply"
    assert [case.case_id for case in result.cases] == ["case-a", "case-b"]
    assert len(result.legal_basis) == 1 and "seed §三" in result.legal_basis[0]
    assert result.subject_hash == deployment.factory.subject_hash(subject, POWER)
    assert result.target is Target.site
    assert result.cases[0].facts == ("business_premises",) and "cultivated" in result.cases[0].rule
    assert result.cases[0].site_hashes == tuple(deployment.factory.site_hashes(PREMISES, POWER))
    assert subscriber.check(POWER, new_uscc(), UNIT) == Clear(POWER)


def test_stale_until_every_partition_has_vouched(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    log, subject = Log(), new_uscc()
    entry, _ = _entry(deployment, log, subject)
    beats = log.heartbeats(deployment.factory, clock.now)
    subscriber.apply_records([entry, *beats[:2]])

    stale = subscriber.check(POWER, new_uscc(), UNIT)
    assert isinstance(stale, Stale)
    assert stale.watermark is None and stale.age_seconds is None
    assert stale.last_known == Clear(POWER)
    known = subscriber.check(POWER, subject, UNIT)
    assert isinstance(known, Stale) and isinstance(known.last_known, Blocked)

    subscriber.apply_records(beats[2:])
    assert subscriber.check(POWER, new_uscc(), UNIT) == Clear(POWER)


def test_stale_once_the_last_heartbeat_is_older_than_the_bound(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    log = Log()
    subscriber.apply_records(log.heartbeats(deployment.factory, clock.now))
    clock.now += 29.9  # as_of travels with microsecond precision: keep off the boundary
    assert subscriber.check(POWER, new_uscc(), UNIT) == Clear(POWER)
    clock.now += 0.6
    stale = subscriber.check(POWER, new_uscc(), UNIT)
    assert isinstance(stale, Stale)
    assert stale.age_seconds == pytest.approx(30.5, abs=1e-3)
    assert subscriber.freshness(POWER).stale


def test_a_heartbeat_from_a_clock_ahead_vouches_only_up_to_its_arrival(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    subscriber.apply_records(Log().heartbeats(deployment.factory, clock.now + 3600))
    clock.now += 31
    assert isinstance(subscriber.check(POWER, new_uscc(), UNIT), Stale)


def test_a_heartbeat_from_beyond_any_clock_skew_vouches_for_nothing(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    subscriber.apply_records(Log().heartbeats(deployment.factory, clock.now + 3600))
    assert isinstance(subscriber.check(POWER, new_uscc(), UNIT), Stale)  # not even at arrival
    subscriber.apply_records(Log().heartbeats(deployment.factory, clock.now + 2))
    assert subscriber.check(POWER, new_uscc(), UNIT) == Clear(POWER)


def test_only_a_signed_lift_lifts_the_block_never_a_tombstone_a_forgery_or_a_replay(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    """#18 item 4: anyone who can write the topic can write a tombstone or replay an old
    lift; the block stays until the builder's own, newer lift."""
    log, subject, factory = Log(), new_uscc(), deployment.factory
    where = factory.partition(POWER, subject)
    old_lift = factory.lift(POWER, subject)  # a genuine lift, before the block
    entry, _ = _entry(deployment, log, subject)
    subscriber.apply_records([entry, *log.heartbeats(factory, clock.now)])
    assert isinstance(subscriber.check(POWER, subject, UNIT), Blocked)

    forger = Signer.generate(factory.signer.key_id)  # the builder's key id, another key
    attacks = [
        log.at(where, *factory.tombstone(subject, POWER)),
        log.at(where, *old_lift),
        log.at(where, *factory.lift(POWER, subject, signer=forger, version=10**9)),
    ]
    applied = subscriber.apply_records(attacks)
    assert (applied.tombstones, applied.replayed, applied.refused) == (1, 1, 1)
    assert applied.removals == 0
    assert isinstance(subscriber.check(POWER, subject, UNIT), Blocked)

    applied = subscriber.apply_records([log.at(where, *factory.lift(POWER, subject))])
    assert applied.removals == 1
    subscriber.apply_records(log.heartbeats(factory, clock.now))
    assert subscriber.check(POWER, subject, UNIT) == Clear(POWER)
    assert subscriber.replica().counts().get(POWER, 0) == 0


def test_a_replica_that_diverges_from_the_signed_head_answers_stale_not_clear(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    """M1: a replica that missed an entry (a truncated log, compaction of a forged
    tombstone) must not answer clear for it."""
    log, factory = Log(), deployment.factory
    held, missed = new_uscc(), new_uscc()
    entry, _ = _entry(deployment, log, held)
    factory.entry(POWER, missed)  # published, but never reaches this replica
    applied = subscriber.apply_records([entry, *log.heartbeats(factory, clock.now)])
    assert applied.diverged  # the missed subject's partition, at least
    assert isinstance(subscriber.check(POWER, missed, UNIT), Stale)
    assert subscriber.health()["status"] == "stale"


def test_an_entry_its_tombstone_and_a_new_entry_in_one_poll_leave_the_subject_blocked(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    log, subject = Log(), new_uscc()
    first, _ = _entry(deployment, log, subject, case_ids=("case-a",))
    lifted = log.at(first.partition, *deployment.factory.lift(POWER, subject))
    again, _ = _entry(deployment, log, subject, case_ids=("case-b",))
    subscriber.apply_records([first, lifted, again, *log.heartbeats(deployment.factory, clock.now)])

    assert cases_behind(subscriber.check(POWER, subject, UNIT)) == ["case-b"]


def test_each_case_newly_behind_a_block_is_acknowledged_once_with_a_fixed_id(
    subscriber: Subscriber, deployment: Deployment
) -> None:
    log, subject = Log(), new_uscc()
    first, first_id = _entry(deployment, log, subject, case_ids=("case-1",))
    subscriber.apply_records([first])
    subscriber.apply_records([first])  # delivered again: nothing new
    second, second_id = _entry(deployment, log, subject, case_ids=("case-1", "case-2"))
    subscriber.apply_records([second])

    acks = [(e, p) for e, p in _events(subscriber, deployment) if e.kind == "ack"]
    assert [p.case_id for _, p in acks] == ["case-1", "case-2"]  # type: ignore[attr-defined]
    for (event, payload), cause, rec in zip(
        acks, (first_id, second_id), (first, second), strict=True
    ):
        assert isinstance(payload, MeasureApplied)
        assert event.topic == ACKNOWLEDGEMENTS.name
        assert event.key == payload.case_id.encode()
        assert event.event_id == derived_id(f"{SUBSCRIBER}:applied:{POWER}:{payload.case_id}")
        assert payload.department == "power_supply"
        assert payload.measure == POWER
        assert payload.caused_by == cause
        assert payload.reference == f"{SUBSCRIBER}:{rec.topic}:{rec.partition}:{rec.offset}"
        envelope, _ = decode(event.value, deployment.trust)
        assert envelope.source == f"/authorities/{SUBSCRIBER}"
        assert envelope.id == event.event_id


def test_every_change_is_queued_for_the_webhook_with_masked_data_only(
    subscriber: Subscriber, deployment: Deployment
) -> None:
    log, subject = Log(), new_uscc()
    entry, _ = _entry(deployment, log, subject)
    subscriber.apply_records([entry])
    subscriber.apply_records([entry])  # no change, no notice
    lift = log.at(entry.partition, *deployment.factory.lift(POWER, subject))
    subscriber.apply_records([lift])
    subscriber.apply_records([lift])  # nothing left

    notices = [json.loads(n.body) for n in subscriber.replica().pending_webhooks(10)]
    assert [n["change"] for n in notices] == ["blocked", "lifted"]
    assert notices[0]["masked_name"] == "孝*********"
    assert notices[0]["cases"][0]["case_id"] == "case-1"
    assert notices[0]["target"] == "site"
    assert notices[0]["cases"][0]["site_hashes"] == deployment.factory.site_hashes(PREMISES, POWER)
    assert notices[0]["cases"][0]["facts"] == ["business_premises"]
    assert UNIT not in json.dumps(notices)  # hashes only, never the site
    assert {n["subject_hash"] for n in notices} == {deployment.factory.subject_hash(subject, POWER)}
    assert subject not in json.dumps(notices)
    assert len({n["id"] for n in notices}) == 2


def test_bad_records_become_signed_dead_letters_and_the_offsets_advance(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    log, factory = Log(), deployment.factory
    subject = new_uscc()
    key = factory.subject_hash(subject, POWER).encode()
    forger = RecordFactory(factory.master_key, Signer.generate(factory.signer.key_id))
    # Never published by the builder (a version of its own): not in the signed heads.
    other_key, other_value, _ = factory.entry(POWER, new_uscc(), version=1)
    bad = [
        (log.at(0, key, b"not json"), "invalid_event"),
        (log.at(0, key, forger.entry(POWER, subject)[1]), "signature_bad_signature"),
        (log.at(0, key, factory.entry(POWER, subject, key_id="0" * 16)[1]), "wrong_subject_key"),
        (log.at(0, key, factory.entry(POWER, subject, entry_measure=LOANS)[1]), "wrong_measure"),
        (log.at(0, other_key, factory.entry(POWER, subject)[1]), "key_mismatch"),
        (log.at(0, b"not-a-hash", other_value), "invalid_key"),
        (log.at(0, None, other_value), "invalid_key"),
        (log.at(0, *factory.heartbeat(POWER, 2)), "wrong_partition"),
        (log.at(0, *factory.heartbeat(LOANS, 0)), "wrong_partition"),
        (log.at(0, b"heartbeat", None), "invalid_event"),
    ]
    good, _ = _entry(deployment, log, subject)
    applied = subscriber.apply_records([r for r, _ in bad] + [good])

    assert applied.refused == len(bad)
    letters = [(e, p) for e, p in _events(subscriber, deployment) if e.kind == "dead_letter"]
    assert [p.reason for _, p in letters] == [reason for _, reason in bad]  # type: ignore[attr-defined]
    for (event, letter), (rec, _) in zip(letters, bad, strict=True):
        assert isinstance(letter, DeadLetter)
        assert event.topic == DEAD_LETTERS.name
        assert event.key == SUBSCRIBER.encode()
        assert (letter.consumer, letter.topic, letter.offset) == (SUBSCRIBER, rec.topic, rec.offset)
        assert letter.detail
    topic = blocklist_topic(POWER).name
    assert subscriber.offsets()[(topic, 0)] == log.next[0]
    assert subscriber.offsets()[(topic, good.partition)] == good.offset + 1
    subscriber.apply_records(log.heartbeats(factory, clock.now))
    assert isinstance(subscriber.check(POWER, subject, UNIT), Blocked)


def test_without_a_signing_key_a_refusal_is_logged_with_its_reason(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    subscriber = Subscriber(deployment.config(SUBSCRIBER, (POWER,), signed=False))
    log = Log()
    garbage = log.at(0, b"0" * 64, b"garbage")
    entry, _ = _entry(deployment, log, new_uscc())
    with caplog.at_level(logging.WARNING):
        applied = subscriber.apply_records([garbage, entry])
    assert applied.refused == 1
    assert "invalid_event" in caplog.text and "no dead letter" in caplog.text
    assert subscriber.replica().pending_events(10) == []  # nothing signed: no acks either
    topic = blocklist_topic(POWER).name
    assert subscriber.offsets()[(topic, 0)] == log.next[0]
    assert subscriber.offsets()[(topic, entry.partition)] == entry.offset + 1


def test_a_reopened_replica_resumes_where_its_data_ends(
    deployment: Deployment, clock: ManualClock
) -> None:
    config = deployment.config(SUBSCRIBER, (POWER,))
    log, subject = Log(), new_uscc()
    first = Subscriber(config, clock=clock)
    entry, _ = _entry(deployment, log, subject)
    first.apply_records([entry, *log.heartbeats(deployment.factory, clock.now)])
    offsets = first.offsets()
    first.stop()

    again = Subscriber(config, clock=clock)
    assert again.offsets() == offsets
    assert offsets == {(blocklist_topic(POWER).name, p): log.next[p] for p in PARTITIONS}
    assert isinstance(again.check(POWER, subject, UNIT), Blocked)  # index and watermark reloaded
    assert again.check(POWER, new_uscc(), UNIT) == Clear(POWER)


def test_a_failed_batch_leaves_no_trace(deployment: Deployment, subscriber: Subscriber) -> None:
    class BrokenSigner(Emitter):
        def ack(self, item: Upsert, case_id: str, applied_at: datetime) -> Outgoing | None:
            if case_id == "case-2":
                raise RuntimeError("signing failed")
            return super().ack(item, case_id, applied_at)

    log = Log()
    first, _ = _entry(deployment, log, new_uscc(), case_ids=("case-1",))
    second, _ = _entry(deployment, log, new_uscc(), case_ids=("case-2",))
    reader = subscriber._records
    items = [reader.read(r, POWER) for r in (first, second)]
    replica = subscriber.replica()
    with pytest.raises(RuntimeError):
        replica.apply(
            items, BrokenSigner(SUBSCRIBER, deployment.signers[SUBSCRIBER], webhooks=True), 0.0
        )
    assert replica.counts() == {}
    assert replica.pending_events(10) == []
    assert replica.pending_webhooks(10) == []
    assert set(subscriber.offsets().values()) == {None}


def test_a_measure_not_served_is_refused_naming_measure(subscriber: Subscriber) -> None:
    with pytest.raises(InvalidInput) as refused:
        subscriber.check(LOANS, new_uscc())
    assert refused.value.field == "measure"
    assert POWER in refused.value.reason
    with pytest.raises(ConfigError, match="measures"):
        subscriber.apply_records([record(LOANS, 0, 0, b"heartbeat", None)])


def test_a_bad_id_is_refused_naming_subject_and_the_reason(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    subscriber.apply_records(Log().heartbeats(deployment.factory, clock.now))
    subject = new_uscc()
    wrong = subject[:-1] + ("0" if subject[-1] != "0" else "1")
    with pytest.raises(InvalidInput) as refused:
        subscriber.check(POWER, wrong, UNIT)
    assert refused.value.field == "subject"
    assert "check character" in refused.value.reason


def test_a_replica_built_under_another_subject_key_is_rebuilt(
    deployment: Deployment, tmp_path: Path, clock: ManualClock
) -> None:
    config = deployment.config(SUBSCRIBER, (POWER,))
    log = Log()
    first = Subscriber(config, clock=clock)
    entry, _ = _entry(deployment, log, new_uscc())
    first.apply_records([entry, *log.heartbeats(deployment.factory, clock.now)])
    first.stop()

    rotated = Deployment.create(tmp_path / "rotated", SUBSCRIBER)
    again = Subscriber(rotated.config(SUBSCRIBER, (POWER,), replica=config.replica), clock=clock)
    assert again.replica().counts() == {}
    assert set(again.offsets().values()) == {None}
    assert isinstance(again.check(POWER, new_uscc(), UNIT), Stale)


def test_a_reset_partition_forgets_only_that_partition(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    log = Log()
    on_0, _ = _entry(deployment, log, _subject_on(deployment.factory, 0))
    subject_1 = _subject_on(deployment.factory, 1)
    on_1, _ = _entry(deployment, log, subject_1)
    subscriber.apply_records([on_0, on_1, *log.heartbeats(deployment.factory, clock.now)])
    topic = blocklist_topic(POWER).name

    subscriber.reset_partition(POWER, topic, 0)
    assert subscriber.replica().counts() == {POWER: 1}
    assert subscriber.offsets()[(topic, 0)] is None
    assert subscriber.offsets()[(topic, 1)] == log.next[1]
    assert isinstance(subscriber.check(POWER, subject_1, UNIT), Stale)  # partition 0 unvouched


def test_the_replica_file_must_exist_for_a_reader(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        Replica.open(tmp_path / "none.sqlite3")
    assert refused.value.field == "replica"
