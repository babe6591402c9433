"""What the daemon tells Prometheus: how stale each list is, and the checks it answered.

A registry of its own, not the process-wide one: a process that also runs Redline's
services (a test, a benchmark) must not see the same metric name registered twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from connectors.subscriber.errors import ConnectorError
from connectors.subscriber.view import BlocklistView

# The *_created series only double what operators must scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

SERVICE = "subscriber"
OUTCOMES = ("blocked", "clear", "stale", "refused")
CONTENT_TYPE = CONTENT_TYPE_LATEST
_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class _ViewCollector(Collector):
    """Read at scrape time from the daemon's view; every series names the subscriber."""

    def __init__(self, name: str, view: BlocklistView) -> None:
        self.name = name
        self.view = view


class _Staleness(_ViewCollector):
    """Read at scrape time from the view: seconds since each list's watermark."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "redline_subscriber_staleness_seconds",
            "Seconds since the builder last vouched for this list (+Inf: never).",
            labels=["subscriber", "measure"],
        )
        for measure in self.view.measures:
            age = self.view.freshness(measure).age_seconds
            family.add_metric([self.name, measure], math.inf if age is None else age)
        yield family


class _Quarantined(_ViewCollector):
    """Read at scrape time from the replica: rows its senders set aside for good (#18).
    A gauge, not a counter: it stays up across restarts until an operator releases them."""

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "redline_subscriber_quarantined_messages",
            "Acknowledgements (events) or webhook notices (webhooks) refused for good and "
            "set aside, waiting for an operator to release them.",
            labels=["subscriber", "queue"],
        )
        try:
            counts = self.view.replica().quarantined()
        except ConnectorError:
            counts = {}  # no replica yet: nothing to report, and the scrape must not fail
        for queue, count in sorted(counts.items()):
            family.add_metric([self.name, queue], count)
        yield family


class _Integrity(_ViewCollector):
    """Read at scrape time from the feeder (#18): records that tried to lift a block or
    roll the list back without the builder's signature, and divergences from the signed
    list heads. Any of them rising is an attack on the topic or a lost log."""

    def collect(self) -> Iterator[Metric]:
        status = getattr(self.view, "feed_status", None)
        family = CounterMetricFamily(
            "redline_subscriber_integrity_events",
            "Unsigned tombstones ignored (tombstone), older records replayed and ignored "
            "(replay), partitions that diverged from the builder's signed head (divergence).",
            labels=["subscriber", "kind"],
        )
        for kind, count in (
            ("tombstone", status.tombstones if status else 0),
            ("replay", status.replayed if status else 0),
            ("divergence", status.divergences if status else 0),
        ):
            family.add_metric([self.name, kind], count)
        yield family


class DaemonMetrics:
    def __init__(self, name: str, view: BlocklistView) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "redline_check_requests",
            "Blocklist checks answered, by outcome.",
            ["service", "outcome"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "redline_check_duration_seconds",
            "Time to answer one check.",
            ["service"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.requests.labels(SERVICE, outcome)
        self._timer = self.seconds.labels(SERVICE)
        for collector in (_Staleness, _Quarantined, _Integrity):
            self.registry.register(collector(name, view))

    def observe(self, outcome: str, seconds: float) -> None:
        self.requests.labels(SERVICE, outcome).inc()
        self._timer.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
