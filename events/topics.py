"""Every Kafka topic Redline uses, with its settings, written down in this one place.

The services create these idempotently at start-up, and the AsyncAPI document is
generated from them, so the broker, the code and the documentation cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from events.catalogue import load_catalogue

FOREVER = "-1"
NINETY_DAYS_MS = str(90 * 24 * 3600 * 1000)
THIRTY_DAYS_MS = str(30 * 24 * 3600 * 1000)

# A write acknowledged with acks=all (every Redline producer) is then held by at least two
# brokers, so losing one loses nothing acknowledged. With fewer in sync the partition
# refuses writes (NOT_ENOUGH_REPLICAS) and the outbox relays retry: delayed, never lost.
MIN_INSYNC = "min.insync.replicas"
DURABLE = {MIN_INSYNC: "2"}


@dataclass(frozen=True)
class Topic:
    """A topic, its key, what it carries, and the broker settings it needs."""

    name: str
    partitions: int
    key: str
    description: str
    event_types: tuple[str, ...]
    config: dict[str, str] = field(default_factory=dict)


VIOLATIONS = Topic(
    name="redline.violations.v1",
    partitions=6,
    key="case id: every event of one case lands on one partition, in order",
    description=(
        "The legal record: clues, cases and their lifecycle, accountability referrals. "
        "Kept forever."
    ),
    event_types=(
        "redline.clue.reported.v1",
        "redline.case.filed.v3",
        "redline.case.corrected.v2",
        "redline.case.penalty_decided.v2",
        "redline.case.rectification_recorded.v1",
        "redline.case.restoration_verified.v1",
        "redline.case.revoked.v1",
        "redline.case.land_procedures_obtained.v1",
        "redline.case.confiscation_completed.v1",
        "redline.case.closed.v1",
        "redline.accountability.triggered.v2",
    ),
    config={
        "cleanup.policy": "delete",
        "retention.ms": FOREVER,
        "retention.bytes": FOREVER,
        **DURABLE,
    },
)

ACKNOWLEDGEMENTS = Topic(
    name="redline.acknowledgements.v1",
    partitions=6,
    key="case id; a department's answers to one batch: its department code",
    description=(
        "What each department and subscriber did about each case (applied, lifted, failed): "
        "a department's answers to each batch it takes in one event, a subscriber's one "
        "by one; and the feedback tracker's notices of responses overdue."
    ),
    event_types=(
        "redline.measure.answered.v1",
        "redline.measure.applied.v1",
        "redline.measure.lifted.v2",
        "redline.measure.failed.v1",
        "redline.response.overdue.v1",
    ),
    config={
        "cleanup.policy": "delete",
        "retention.ms": FOREVER,
        "retention.bytes": FOREVER,
        **DURABLE,
    },
)

# The measures served to outside companies (utilities, banks) as blocklists, derived from
# the catalogue (package data, like the models): one topic per measure, so a company is
# granted (by ACL) and receives only what it enforces. A new utility or bank in the
# catalogue is a new list, with nothing else to edit.
BLOCKLIST_MEASURES: tuple[str, ...] = tuple(load_catalogue().blocklist_measures())
HEARTBEAT_KEY = "heartbeat"  # never a subject hash (those are hex), so it cannot collide


def blocklist_topic(measure: str) -> Topic:
    """The compacted topic of one measure's active blocks."""
    return Topic(
        name=f"redline.blocklist.{measure}.v1",
        partitions=3,
        key=(
            "keyed hash of the subject (HMAC-SHA256 under the measure's key, hex); a signed "
            "blocklist.lifted record lifts the entry (a null value is unsigned and ignored); "
            f"key {HEARTBEAT_KEY!r} carries the builder's heartbeat, one per partition"
        ),
        description=(
            f"The active blocks of measure {measure}, one record per subject; compacted, so "
            "reading it from the start gives the current list."
        ),
        event_types=(
            "redline.blocklist.entry.v3",
            "redline.blocklist.lifted.v1",
            "redline.blocklist.heartbeat.v2",
        ),
        # The builder lifts with signed records, which compaction keeps; a tombstone
        # (anyone's) is ignored by subscribers, and the list heads in the heartbeats show
        # a replica that misses what compaction removed (events.blocklist_head).
        config={
            "cleanup.policy": "compact",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": THIRTY_DAYS_MS,
            **DURABLE,
        },
    )


BLOCKLISTS: tuple[Topic, ...] = tuple(blocklist_topic(m) for m in BLOCKLIST_MEASURES)

DEAD_LETTERS = Topic(
    name="redline.deadletter.v1",
    partitions=1,
    key="the consumer group that refused the message",
    description="Messages a consumer could not accept, with the reason and the original bytes.",
    event_types=("redline.deadletter.v1",),
    config={"cleanup.policy": "delete", "retention.ms": NINETY_DAYS_MS, **DURABLE},
)

# Kafka's rule for topic names; a broker answers INVALID_TOPIC_EXCEPTION to any other,
# which clients only log before timing out as if the broker were slow.
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def topic_name_error(topic: str) -> str | None:
    """Why Kafka refuses this topic name, or None when it is a valid one."""
    if topic in (".", "..") or not _TOPIC_NAME.fullmatch(topic):
        return f"{topic[:80]!r} is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -, not . or ..)"
    return None


ALL_TOPICS: tuple[Topic, ...] = (VIOLATIONS, ACKNOWLEDGEMENTS, *BLOCKLISTS, DEAD_LETTERS)


def broker_settings(topic: Topic, replication_factor: int) -> tuple[dict[str, str], dict[str, str]]:
    """The settings `topic` is created and checked with at this replication factor, and
    those left out, each with the reason. min.insync.replicas above the replication
    factor would refuse every acks=all write, so with one replica (`make run`'s embedded
    broker, a one-broker Compose) it is left out, explicitly."""
    kept: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name, value in topic.config.items():
        if name == MIN_INSYNC and int(value) > replication_factor:
            skipped[name] = (
                f"{value} needs at least {value} replicas; the replication factor is "
                f"{replication_factor}, so every acks=all write would be refused"
            )
        else:
            kept[name] = value
    return kept, skipped
