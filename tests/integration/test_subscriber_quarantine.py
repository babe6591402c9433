"""A poison row does not stall the subscriber's queues (#18), on the real broker: an
acknowledgement the broker refuses for good, and a notice the webhook refuses with a 4xx,
are set aside with the reason and the rows behind them go on."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

from connectors.subscriber.metrics import DaemonMetrics
from connectors.subscriber.replica import Replica
from connectors.subscriber.senders import webhook_refused_for_good
from connectors.subscriber.testing import Deployment
from events.topics import ACKNOWLEDGEMENTS
from tests.conftest import Stack
from tests.integration.connectors import webhook
from tests.integration.test_subscriber_connector import (
    POWER,
    POWER_SUB,
    Builder,
    builder,
    deployment,
    running,
)
from tests.support import eventually, new_uscc, read_topic

__all__ = ["builder", "deployment"]  # fixtures shared with the connector's tests

TOO_LARGE = 2 * 1024 * 1024  # over the producer's max_request_size (and a broker's default)


def _gauge(subscriber: object, queue: str) -> float:
    """The value of the daemon's quarantined gauge for `queue`, as Prometheus reads it."""
    metrics = DaemonMetrics(POWER_SUB, subscriber)  # type: ignore[arg-type]
    text = metrics.render().decode()
    line = f'redline_subscriber_quarantined_messages{{queue="{queue}",subscriber="{POWER_SUB}"}}'
    (value,) = [row.split()[-1] for row in text.splitlines() if row.startswith(line)]
    return float(value)


async def test_an_acknowledgement_the_broker_refuses_is_set_aside_and_later_ones_are_sent(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    path = tmp_path / "power.sqlite3"
    replica = Replica.open(path, create=True)
    try:
        # Queued ahead of what the test causes: a topic name the broker answers
        # INVALID_TOPIC to, and a record larger than the producer may send.
        for event_id, topic, value in (
            (f"bad-topic-{uuid.uuid4()}", "redline acks!", b"x"),
            (f"too-large-{uuid.uuid4()}", ACKNOWLEDGEMENTS.name, b"x" * TOO_LARGE),
        ):
            replica._db.execute(
                "INSERT INTO outbox (event_id, kind, topic, key, value, queued_at) "
                "VALUES (?, 'ack', ?, ?, ?, ?)",
                (event_id, topic, b"case-poison", value, time.time()),
            )
    finally:
        replica.close()
    case_id = f"case-{uuid.uuid4().hex}"
    with running(deployment, stack.kafka, POWER_SUB, POWER, path) as power:
        await builder.entry(POWER, new_uscc(), case_id)

        async def acknowledged() -> bool:
            records = await read_topic(stack.kafka, ACKNOWLEDGEMENTS.name)
            return any(r.key == case_id.encode() for r in records)

        await eventually(acknowledged, timeout=60, what="the ack queued behind the poison")
        rows = power.replica()._query("SELECT topic, reason FROM outbox_quarantine ORDER BY seq")
        assert [topic for topic, _ in rows] == ["redline acks!", ACKNOWLEDGEMENTS.name]
        assert "InvalidTopicError" in rows[0][1]
        assert "MessageSizeTooLargeError" in rows[1][1]

        async def drained() -> bool:
            # Entries of earlier tests on the shared lists are acknowledged too: the
            # queue empties once they are all sent, none held up behind the poison.
            return power.replica().queue_sizes()[0] == 0

        await eventually(drained, timeout=60, what="every acknowledgement sent")
        assert _gauge(power, "events") == 2
        assert _gauge(power, "webhooks") == 0


class _Refuses400Once(BaseHTTPRequestHandler):
    """Answers 400 Bad Request to the first notice about `subject_hash`, 204 to every
    other: the shared lists hold earlier tests' entries, notified first or not."""

    bodies: ClassVar[list[dict[str, object]]] = []
    refused: ClassVar[list[dict[str, object]]] = []
    subject_hash: ClassVar[str] = ""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.refused and body.get("subject_hash") == self.subject_hash:
            self.refused.append(body)
            self.send_response(400)
        else:
            self.bodies.append(body)
            self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _receiver(subject_hash: str) -> Iterator[tuple[str, type[_Refuses400Once]]]:
    class Receiver(_Refuses400Once):
        bodies: ClassVar[list[dict[str, object]]] = []
        refused: ClassVar[list[dict[str, object]]] = []

    Receiver.subject_hash = subject_hash

    with webhook(Receiver) as url:
        yield url, Receiver


async def test_a_webhook_answering_400_once_does_not_block_later_changes(
    stack: Stack, builder: Builder, deployment: Deployment, tmp_path: Path
) -> None:
    subject = new_uscc()
    digest = deployment.factory.subject_hash(subject, POWER)
    with (
        _receiver(digest) as (url, handler),
        running(
            deployment, stack.kafka, POWER_SUB, POWER, tmp_path / "power.sqlite3", webhook_url=url
        ) as power,
    ):
        await builder.entry(POWER, subject, f"case-{uuid.uuid4().hex}")
        await builder.lift(POWER, subject)

        def changes() -> list[object]:
            return [b["change"] for b in handler.bodies if b["subject_hash"] == digest]

        async def lifted() -> bool:
            return changes() == ["lifted"]

        await eventually(lifted, what="the change behind the refused one delivered")
        assert [b["change"] for b in handler.refused] == ["blocked"]
        (aside,) = power.replica()._query("SELECT body, reason FROM webhooks_quarantine")
        assert json.loads(aside[0])["subject_hash"] == digest
        assert json.loads(aside[0])["change"] == "blocked" and aside[1] == "HTTP 400"
        assert _gauge(power, "webhooks") == 1

        # Never sent again on its own; released by an operator, it goes out.
        assert power.replica().release_quarantined("webhooks") == 1

        async def released() -> bool:
            return changes() == ["lifted", "blocked"]

        await eventually(released, what="the released notice delivered")
        assert _gauge(power, "webhooks") == 0


def test_only_a_4xx_other_than_timeout_and_too_many_requests_is_refused_for_good() -> None:
    assert not any(webhook_refused_for_good(s) for s in (200, 302, 408, 429, 500, 502, 503))
    assert all(webhook_refused_for_good(s) for s in (400, 401, 403, 404, 409, 410, 413, 422))
