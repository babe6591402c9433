"""The consumer thread: reads the subscriber's blocklist topics into the replica.

kafka-python with manual assignment, not a consumer group: every subscriber reads every
partition of its measures, and the position lives in the replica next to the data (no
committed offsets on the broker), so a restart resumes exactly where the data ends.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from connectors.subscriber.backoff import Backoff
from connectors.subscriber.errors import BrokerError, ConnectorError
from connectors.subscriber.records import RawRecord, RecordCounts
from events.fetch_pace import FetchPace
from events.topics import HEARTBEAT_KEY, blocklist_topic

if TYPE_CHECKING:
    from connectors.subscriber.subscriber import Subscriber

log = logging.getLogger(__name__)

POLL_TIMEOUT_MS = 500
# A broker may hold a fetch until its wait ends even when data arrives (Tansu does), so
# the wait bounds how late a block reaches the replica: 100 ms while blocks flow, up to
# 1 s once the lists have been quiet a while (events/fetch_pace.py).
FETCH_WAIT_MS = 100
FETCH_WAIT_IDLE_MS = 1000
HEARTBEAT = HEARTBEAT_KEY.encode()
MAX_POLL_RECORDS = 2000
BOOTSTRAP_TIMEOUT_MS = 5000
# How often a connected feeder asks whether the broker is still the cluster it read from.
# A broker that restarted empty can hold offsets the replica already passed, so only the
# cluster id tells that its logs are other logs.
CLUSTER_CHECK_S = 5.0


@dataclass
class FeedStatus(RecordCounts):
    """What the consumer is doing, for health: read racily, written by one thread."""

    connected: bool = False
    batches: int = 0
    divergences: int = 0  # from the signed heads
    last_error: str | None = None
    last_poll_at: float | None = None


def kafka_options(subscriber: Subscriber) -> dict[str, Any]:
    config = subscriber.config
    options: dict[str, Any] = {
        "bootstrap_servers": config.bootstrap,
        "client_id": f"redline-connector-{config.name}",
        # Give up on an unreachable broker after a few seconds (and retry with backoff),
        # so a stop request is not kept waiting by the default 30 s bootstrap.
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    }
    if config.kafka_api_version is not None:
        options["api_version"] = config.kafka_api_version
    if config.kafka_username is not None:
        options["security_protocol"] = "SASL_SSL" if config.kafka_tls else "SASL_PLAINTEXT"
        options["sasl_mechanism"] = config.kafka_sasl_mechanism
        options["sasl_plain_username"] = config.kafka_username
        options["sasl_plain_password"] = config.kafka_password
        if config.kafka_tls:
            options["ssl_context"] = ssl.create_default_context()
    return options


class Feeder(threading.Thread):
    """Polls, applies each batch in one replica transaction, reconnects after failures."""

    def __init__(self, subscriber: Subscriber, stop: threading.Event) -> None:
        super().__init__(name=f"redline-feeder-{subscriber.config.name}", daemon=True)
        self._subscriber = subscriber
        self._halt = stop
        self.status = FeedStatus()
        # Partitions read again from their start after diverging, until a heartbeat
        # matches: a second divergence then does not loop, the partition stays stale.
        self._reread: set[tuple[str, int]] = set()

    def run(self) -> None:
        backoff = Backoff(0.5, 30.0)
        while not self._halt.is_set():
            consumer: KafkaConsumer | None = None
            try:
                consumer = self._connect()
                self.status.connected = True
                self.status.last_error = None
                backoff.reset()
                pace = FetchPace(FETCH_WAIT_MS, FETCH_WAIT_IDLE_MS)
                next_check = time.monotonic() + CLUSTER_CHECK_S
                while not self._halt.is_set():
                    self._poll_once(consumer, pace)
                    if time.monotonic() >= next_check:
                        self._same_cluster()
                        next_check = time.monotonic() + CLUSTER_CHECK_S
            except (KafkaError, OSError, ConnectorError) as exc:
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("blocklist consumer: %s; reconnecting", self.status.last_error)
            except Exception as exc:  # a bug must not end the thread: retry, and say so
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("blocklist consumer failed; reconnecting")
            finally:
                self.status.connected = False
                if consumer is not None:
                    self._close(consumer)
            self._halt.wait(backoff.next())

    def _poll_once(self, consumer: KafkaConsumer, pace: FetchPace) -> None:
        polled = consumer.poll(
            timeout_ms=max(POLL_TIMEOUT_MS, pace.wait_ms()), max_records=MAX_POLL_RECORDS
        )
        self.status.last_poll_at = self._subscriber.now()
        records = [
            RawRecord(r.topic, r.partition, r.offset, r.key, r.value)
            for batch in polled.values()
            for r in batch
        ]
        # The builder's heartbeats come every few seconds whatever happens: only blocks
        # and lifts tell that the lists are busy. kafka-python reads the wait from its
        # fetcher's config for each fetch it sends.
        blocks = sum(1 for record in records if record.key != HEARTBEAT)
        consumer._fetcher.config["fetch_max_wait_ms"] = pace.read(blocks)
        if records:
            applied = self._subscriber.apply_records(records)
            self.status.add(applied)
            self.status.divergences += len(applied.diverged)
            self.status.batches += 1
            for measure, partition, _ in applied.vouched:
                self._reread.discard((blocklist_topic(measure).name, partition))
            for measure, topic, partition in applied.diverged:
                self._read_again(consumer, measure, topic, partition)

    def _read_again(
        self, consumer: KafkaConsumer, measure: str, topic: str, partition: int
    ) -> None:
        """A partition whose replica differs from the builder's signed head is forgotten
        and read again from its start, once; it answers stale meanwhile."""
        if (topic, partition) in self._reread:
            return
        self._reread.add((topic, partition))
        log.warning("%s/%d diverged from the signed list: reading it again", topic, partition)
        self._subscriber.reset_partition(measure, topic, partition)
        consumer.seek_to_beginning(TopicPartition(topic, partition))

    def _connect(self) -> KafkaConsumer:
        subscriber = self._subscriber
        consumer = KafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            # Never a silent jump: an offset the log no longer holds is an error, and the
            # reconnect that follows decides (see _seek and _check_cluster).
            auto_offset_reset="none",
            max_poll_records=MAX_POLL_RECORDS,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            **kafka_options(subscriber),
        )
        try:
            assigned = self._assign(consumer)
            self._check_cluster(assigned)
            self._seek(consumer, assigned)
        except BaseException:
            self._close(consumer)
            raise
        log.info("blocklist consumer assigned %d partitions", len(assigned))
        return consumer

    def _assign(self, consumer: KafkaConsumer) -> dict[TopicPartition, str]:
        assigned: dict[TopicPartition, str] = {}
        replica = self._subscriber.replica()
        for measure in self._subscriber.measures:
            topic = blocklist_topic(measure).name
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise BrokerError(
                    f"topic {topic} does not exist on {self._subscriber.config.bootstrap}"
                )
            replica.register_partitions(measure, topic, partitions)
            self._subscriber.reload_freshness(measure)
            for partition in sorted(partitions):
                assigned[TopicPartition(topic, partition)] = measure
        consumer.assign(list(assigned))
        return assigned

    def _check_cluster(self, assigned: dict[TopicPartition, str]) -> None:
        """A different cluster (e.g. a broker that restarted without its data) has other
        logs under the same offsets: everything read from the old one is forgotten."""
        cluster_id = self._cluster_id()
        if cluster_id is None:
            return
        replica = self._subscriber.replica()
        known = replica.meta().get("cluster_id")
        if known is not None and known != cluster_id:
            log.warning(
                "the broker is cluster %s, the replica was read from %s: reading every "
                "partition again from its start",
                cluster_id,
                known,
            )
            for tp, measure in assigned.items():
                self._subscriber.reset_partition(measure, tp.topic, tp.partition)
        if known != cluster_id:
            replica.set_meta("cluster_id", cluster_id)

    def _same_cluster(self) -> None:
        """Raise when the broker is no longer the cluster the replica was read from, so
        the reconnect reads every partition again."""
        cluster_id = self._cluster_id()
        known = self._subscriber.replica().meta().get("cluster_id")
        if cluster_id is not None and known is not None and cluster_id != known:
            raise BrokerError(f"the broker is now cluster {cluster_id}, not {known}")

    def _cluster_id(self) -> str | None:
        """The broker's cluster id, or None where it cannot be had (e.g. no permission)."""
        try:
            admin = KafkaAdminClient(**kafka_options(self._subscriber))
        except KafkaError as exc:
            log.info("cannot ask the cluster id: %s", exc)
            return None
        try:
            cluster_id = admin.describe_cluster().get("cluster_id")
        except KafkaError as exc:
            log.info("cannot ask the cluster id: %s", exc)
            return None
        finally:
            admin.close()
        return cluster_id if isinstance(cluster_id, str) and cluster_id else None

    def _seek(self, consumer: KafkaConsumer, assigned: dict[TopicPartition, str]) -> None:
        """Resume from the stored offsets; a log that no longer holds them is read anew."""
        stored = self._subscriber.offsets()
        partitions = list(assigned)
        first = consumer.beginning_offsets(partitions)
        end = consumer.end_offsets(partitions)
        for tp in partitions:
            position = stored.get((tp.topic, tp.partition))
            if position is None:
                consumer.seek_to_beginning(tp)
            elif first[tp] <= position <= end[tp]:
                consumer.seek(tp, position)
            else:
                log.warning(
                    "%s/%d holds offsets %d..%d, the replica resumes at %d: the log was "
                    "lost or truncated, so this partition is rebuilt from its start",
                    tp.topic,
                    tp.partition,
                    first[tp],
                    end[tp],
                    position,
                )
                self._subscriber.reset_partition(assigned[tp], tp.topic, tp.partition)
                consumer.seek_to_beginning(tp)

    @staticmethod
    def _close(consumer: KafkaConsumer) -> None:
        try:
            consumer.close(autocommit=False)
        except (KafkaError, OSError) as exc:
            log.debug("closing the consumer: %s", exc)
