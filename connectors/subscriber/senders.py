"""The threads that drain the replica's queues: signed events to Kafka, notices to the
webhook. A row is deleted only after the broker (acks='all') or the receiver (2xx) has
confirmed it, so a crash or an outage delays a message but never loses it; the receiver
sees each at least once and can deduplicate on its fixed id.

A row refused for good (#18) is quarantined instead of retried at the head of its queue
for ever: moved aside in the replica with the reason, logged once, shown by the
redline_subscriber_quarantined_messages gauge, and the rows behind it go on (later rows of
the same key too). Permanent: the broker's authorisation, size and topic-name refusals; a
webhook's 4xx other than 408 and 429. Everything else (network, leaders, timeouts, 5xx)
is retried in order.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from kafka import KafkaProducer
from kafka import errors as kafka_errors
from kafka.errors import KafkaError

from connectors.subscriber.backoff import Backoff
from connectors.subscriber.emit import Outgoing
from connectors.subscriber.errors import ConnectorError
from connectors.subscriber.feeder import kafka_options
from events.envelope import kafka_headers
from events.topics import topic_name_error

if TYPE_CHECKING:
    from connectors.subscriber.subscriber import Subscriber

log = logging.getLogger(__name__)

EVENT_BATCH = 500
SEND_TIMEOUT_S = 10.0
WEBHOOK_TIMEOUT_S = 10.0
IDLE_WAIT_S = 0.5

# What the broker refuses for good: sending the same record again cannot succeed.
PERMANENT_KAFKA_ERRORS: tuple[type[KafkaError], ...] = (
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.InvalidTopicError,
    kafka_errors.MessageSizeTooLargeError,  # also raised by send() above max_request_size
    kafka_errors.RecordListTooLargeError,
    kafka_errors.CorruptRecordError,
    kafka_errors.InvalidRecordError,
    kafka_errors.UnsupportedForMessageFormatError,
)


def refused_topic(topic: str) -> str | None:
    """Why Kafka refuses this topic name, or None when it is a valid one."""
    problem = topic_name_error(topic)
    return None if problem is None else f"InvalidTopicError: {problem}"


def webhook_refused_for_good(status: int) -> bool:
    """A 4xx says the request itself is wrong: sending it again gets the same answer.
    408 (timeout) and 429 (too many requests) say "later", as any 5xx does."""
    return 400 <= status < 500 and status not in (408, 429)


class _QueueSender(threading.Thread):
    """A daemon thread draining one of the replica's queues in order until `stop` is set;
    `wake` says a row was queued. Counts what it set aside and keeps its last error."""

    def __init__(
        self, queue: str, subscriber: Subscriber, stop: threading.Event, wake: threading.Event
    ) -> None:
        super().__init__(name=f"redline-{queue}-{subscriber.config.name}", daemon=True)
        self._subscriber = subscriber
        self._halt = stop
        self._wake = wake
        self.quarantined = 0
        self.last_error: str | None = None

    def _idle(self) -> None:
        """Nothing queued: wait for a row (or a while, in case a wake-up was missed)."""
        self._wake.wait(IDLE_WAIT_S)
        self._wake.clear()


class EventSender(_QueueSender):
    """Sends queued acknowledgements and dead letters with a KafkaProducer (acks='all'),
    each with the CloudEvents structured-mode content-type header."""

    def __init__(
        self, subscriber: Subscriber, stop: threading.Event, wake: threading.Event
    ) -> None:
        super().__init__("events", subscriber, stop, wake)
        self.sent = 0

    def run(self) -> None:
        backoff = Backoff(0.5, 30.0)
        producer: KafkaProducer | None = None
        try:
            while not self._halt.is_set():
                try:
                    pending = self._subscriber.replica().pending_events(EVENT_BATCH)
                    if not pending:
                        self._idle()
                        continue
                    if producer is None:
                        producer = KafkaProducer(
                            acks="all",
                            retries=5,
                            max_block_ms=int(SEND_TIMEOUT_S * 1000),
                            **kafka_options(self._subscriber),
                        )
                    self._send(producer, pending)
                    backoff.reset()
                    self.last_error = None
                except Exception as exc:  # the thread must live: retry, and say why
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning(
                        "sending acknowledgements: %s; retrying",
                        self.last_error,
                        exc_info=not isinstance(exc, KafkaError | OSError | ConnectorError),
                    )
                    if producer is not None:
                        _close_producer(producer)
                        producer = None
                    self._halt.wait(backoff.next())
        finally:
            if producer is not None:
                _close_producer(producer)

    def _send(self, producer: KafkaProducer, pending: list[tuple[int, Outgoing]]) -> None:
        """Send a batch; delete what the broker confirmed, set aside what it refused for
        good, and raise the first other failure (those rows are sent again)."""
        futures = []
        failure: Exception | None = None
        for seq, e in pending:
            refused = refused_topic(e.topic)
            if refused is not None:
                self._quarantine(seq, e, refused)
                continue
            try:
                future = producer.send(
                    e.topic, key=e.key, value=e.value, headers=kafka_headers(e.value)
                )
            except PERMANENT_KAFKA_ERRORS as exc:
                self._quarantine(seq, e, f"{type(exc).__name__}: {exc}")
                continue
            except KafkaError as exc:
                failure = exc  # what follows waits: the queue keeps its order
                break
            futures.append((seq, e, future))
        producer.flush(timeout=SEND_TIMEOUT_S)
        confirmed = []
        for seq, e, future in futures:
            try:
                future.get(timeout=SEND_TIMEOUT_S)
                confirmed.append(seq)
            except PERMANENT_KAFKA_ERRORS as exc:
                self._quarantine(seq, e, f"{type(exc).__name__}: {exc}")
            except KafkaError as exc:
                failure = failure or exc
        self._subscriber.replica().delete_events(confirmed)
        self.sent += len(confirmed)
        if failure is not None:
            raise failure

    def _quarantine(self, seq: int, event: Outgoing, reason: str) -> None:
        self._subscriber.replica().quarantine_event(seq, reason, time.time())
        self.quarantined += 1
        log.error(
            "event %s (%s) for %s quarantined, never to be retried on its own: %s. Later "
            "events go on; once the cause is fixed, release it (Replica.release_quarantined)",
            event.event_id,
            event.kind,
            event.topic,
            reason,
        )


def _close_producer(producer: KafkaProducer) -> None:
    try:
        producer.close(timeout=5)
    except (KafkaError, OSError) as exc:
        log.debug("closing the producer: %s", exc)


class WebhookSender(_QueueSender):
    """POSTs each queued change as JSON, in order, retrying with backoff until a 2xx."""

    def __init__(
        self, subscriber: Subscriber, url: str, stop: threading.Event, wake: threading.Event
    ) -> None:
        super().__init__("webhook", subscriber, stop, wake)
        self._url = url
        self.delivered = 0

    def run(self) -> None:
        backoff = Backoff(0.5, 60.0)
        while not self._halt.is_set():
            try:
                pending = self._subscriber.replica().pending_webhooks(100)
            except ConnectorError as exc:
                self.last_error = str(exc)
                self._halt.wait(backoff.next())
                continue
            if not pending:
                self._idle()
                continue
            for notice in pending:
                if self._halt.is_set():
                    return
                error, for_good = self._post(notice.body)
                try:
                    if error is None:
                        self._subscriber.replica().webhook_delivered(notice.seq)
                        self.delivered += 1
                        backoff.reset()
                        self.last_error = None
                        continue
                    if for_good:
                        self._subscriber.replica().quarantine_webhook(
                            notice.seq, error, time.time()
                        )
                        self.quarantined += 1
                        self.last_error = error
                        log.error(
                            "webhook %s refused notice %d for good (%s): quarantined, never "
                            "to be retried on its own; the notices behind it go on",
                            self._url,
                            notice.seq,
                            error,
                        )
                        continue
                    self._subscriber.replica().webhook_failed(notice.seq, error)
                except ConnectorError as exc:
                    error = str(exc)
                self.last_error = error
                log.warning("webhook %s: %s; retrying", self._url, error)
                self._halt.wait(backoff.next())
                break  # in order: retry this notice before any later one

    def _post(self, body: str) -> tuple[str | None, bool]:
        """(None when the receiver answered 2xx, else why not; whether for good)."""
        notice_id = json.loads(body).get("id", "")
        request = urllib.request.Request(  # noqa: S310 (the URL scheme is checked http(s))
            self._url,
            data=body.encode("utf-8"),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "redline-connector",
                "Idempotency-Key": str(notice_id),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}", webhook_refused_for_good(exc.code)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # HTTPException: a receiver that answers garbage (BadStatusLine, LineTooLong)
            return f"{type(exc).__name__}: {exc}", False
        if 200 <= status < 300:
            return None, False
        return f"HTTP {status}", webhook_refused_for_good(status)
