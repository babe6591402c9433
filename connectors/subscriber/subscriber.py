"""The subscriber: a replica kept current from the broker, checks answered from it.

A utility or bank embeds this (or runs the daemon around it) to refuse supply or loans
at the point of transaction. The replica keeps answering while the centre is
unreachable, and turns "stale" once the builder's heartbeats are older than the bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.emit import Emitter
from connectors.subscriber.errors import ConfigError
from connectors.subscriber.feeder import Feeder, FeedStatus
from connectors.subscriber.records import RawRecord, RecordReader
from connectors.subscriber.replica import Applied, Replica
from connectors.subscriber.senders import EventSender, WebhookSender
from connectors.subscriber.subjects import SubjectIds
from connectors.subscriber.view import BlocklistView, Clock, keyring_id
from events.errors import EventError
from events.signing import Signer, TrustStore
from events.topics import blocklist_topic

log = logging.getLogger(__name__)


def load_trust(config: SubscriberConfig) -> TrustStore:
    try:
        return TrustStore.load(config.trust_store)
    except EventError as exc:
        raise ConfigError("trust_store", str(exc)) from exc


def load_signer(config: SubscriberConfig) -> Signer | None:
    if config.signing_key is None or config.signing_key_id is None:
        return None
    try:
        pem = config.signing_key.read_bytes()
    except OSError as exc:
        raise ConfigError("signing_key", f"cannot read {config.signing_key}: {exc}") from exc
    try:
        return Signer.from_pem(config.signing_key_id, pem)
    except EventError as exc:
        raise ConfigError("signing_key", str(exc)) from exc


class Subscriber(BlocklistView):
    """A blocklist view that feeds itself: call `start()` to run the background threads.

    Without `start()` it still answers from the replica as it was left; `apply_records`
    applies records handed to it (what the consumer thread does with each poll).
    """

    def __init__(self, config: SubscriberConfig, *, clock: Clock = time.time) -> None:
        ids = SubjectIds.for_measures(config.subject_key, config.measures)
        trust = load_trust(config)
        signer = load_signer(config)
        replica = Replica.open(config.replica, create=True)
        try:
            rebuilt = replica.initialise(
                config.name,
                keyring_id(ids),
                config.measures,
                {
                    m: (blocklist_topic(m).name, blocklist_topic(m).partitions)
                    for m in config.measures
                },
            )
            if rebuilt is not None:
                log.warning("%s: reading the lists again from the start", rebuilt)
        finally:
            replica.close()
        super().__init__(config.replica, ids, config.measures, config.freshness_bound, clock=clock)
        self.config = config
        self._records = RecordReader(trust, {m: i.key_id for m, i in ids.items()})
        self._emitter = Emitter(config.name, signer, webhooks=config.webhook_url is not None)
        self._measure_of = {blocklist_topic(m).name: m for m in config.measures}
        self._stop = threading.Event()
        self._wake_events = threading.Event()
        self._wake_webhooks = threading.Event()
        self._feeder: Feeder | None = None
        self._events: EventSender | None = None
        self._webhooks: WebhookSender | None = None

    def now(self) -> float:
        return self._clock()

    # -- feeding ----------------------------------------------------------------------

    def apply_records(self, records: Sequence[RawRecord]) -> Applied:
        """Apply one polled batch in one replica transaction, then update the index.

        Records of a topic this subscriber does not serve are not read: it must not hold
        what it is not entitled to, so they raise ConfigError.
        """
        items = []
        for record in records:
            measure = self._measure_of.get(record.topic)
            if measure is None:
                raise ConfigError("measures", f"this subscriber does not read {record.topic}")
            items.append(self._records.read(record, measure))
        applied = self.replica().apply(items, self._emitter, self._clock())
        for measure, digest, listed in applied.changes:
            if listed:
                self.index.add(measure, digest)
            else:
                self.index.discard(measure, digest)
        for measure, partition, at in applied.vouched:
            self.index.vouch(measure, partition, at)
        for measure, _, partition in applied.diverged:
            self.index.unvouch(measure, partition)  # stale at once, never "clear"
        if applied.queued_events:
            self._wake_events.set()
        if applied.queued_webhooks:
            self._wake_webhooks.set()
        return applied

    def reset_partition(self, measure: str, topic: str, partition: int) -> None:
        """Forget a partition whose log no longer holds our position; it is read anew."""
        self.replica().reset_partition(topic, partition)
        self.reload(measure)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Start the consumer and the senders (acks need a signing key, webhooks a URL)."""
        if self._feeder is not None:
            return
        self._stop.clear()
        self._feeder = Feeder(self, self._stop)
        self._feeder.start()
        if self._emitter.signs:
            self._events = EventSender(self, self._stop, self._wake_events)
            self._events.start()
        if self.config.webhook_url is not None:
            self._webhooks = WebhookSender(
                self, self.config.webhook_url, self._stop, self._wake_webhooks
            )
            self._webhooks.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads; what they had not sent stays queued in the replica."""
        self._stop.set()
        self._wake_events.set()
        self._wake_webhooks.set()
        deadline = time.monotonic() + timeout
        for thread in (self._feeder, self._events, self._webhooks):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    log.warning("%s did not stop within %.0f s", thread.name, timeout)
        self._feeder = self._events = self._webhooks = None
        self.close()

    def __enter__(self) -> Subscriber:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def feed_status(self) -> FeedStatus | None:
        return None if self._feeder is None else self._feeder.status

    def health(self) -> dict[str, Any]:
        report = super().health()
        report["subscriber"] = self.config.name
        status = self.feed_status
        report["consumer"] = {
            "running": self._feeder is not None and self._feeder.is_alive(),
            "connected": bool(status and status.connected),
            "records": status.records if status else 0,
            "refused": status.refused if status else 0,
            "ignored_tombstones": status.tombstones if status else 0,
            "replayed": status.replayed if status else 0,
            "divergences": status.divergences if status else 0,
            "last_error": status.last_error if status else None,
        }
        report["senders"] = {
            "events_sent": self._events.sent if self._events else 0,
            "events_error": self._events.last_error if self._events else None,
            "webhooks_delivered": self._webhooks.delivered if self._webhooks else 0,
            "webhooks_error": self._webhooks.last_error if self._webhooks else None,
        }
        return report
