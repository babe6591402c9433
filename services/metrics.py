"""Every metric the services export, declared once (Prometheus naming: `redline_` prefix,
base units, counters end in `_total`). Labels are bounded sets (consumer, department,
measure, topic, township, reason): never a case or subject id.

Counters and histograms are kept by the process that does the work. What describes the
bus as a whole (lag, backlogs, active blocks, pending answers, cases by township) is read
from its source of truth by the monitor (services.entrypoints.monitor), see BusCollector.
"""

from __future__ import annotations

from collections import Counter as Counter_
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import (
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.config import Settings
from services.consuming import RawMessage

# The *_created series only double what operators must scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

_BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CHECK_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)

EVENTS_PUBLISHED = Counter(
    "redline_events_published",
    "Events a relay published, acknowledged by the broker.",
    ["outbox", "topic"],
)
EVENTS_QUARANTINED = Counter(
    "redline_events_quarantined",
    "Events a relay set aside because the broker refused them for good, by Kafka error.",
    ["outbox", "reason"],
)
OUTBOX_QUARANTINED = Gauge(
    "redline_outbox_quarantined_events",
    "Events set aside in an outbox now, waiting for an operator to release them.",
    ["outbox"],
)
EVENTS_CONSUMED = Counter(
    "redline_events_consumed",
    "Messages a consumer took its effect on (or refused).",
    ["consumer", "topic"],
)
BATCH_SECONDS = Histogram(
    "redline_handler_duration_seconds",
    "Time to decode, verify and commit the effect of one batch.",
    ["consumer"],
    buckets=_BATCH_BUCKETS,
)
DEAD_LETTERS = Counter(
    "redline_dead_letters",
    "Messages sent to the dead-letter topic, by reason.",
    ["consumer", "reason"],
)
MEASURES_APPLIED = Counter(
    "redline_measures_applied", "Measures a department applied.", ["department"]
)
MEASURES_LIFTED = Counter(
    "redline_measures_lifted", "Measures a department lifted.", ["department"]
)
CHECK_REQUESTS = Counter(
    "redline_check_requests", "Blocklist checks answered, by outcome.", ["service", "outcome"]
)
CHECK_SECONDS = Histogram(
    "redline_check_duration_seconds",
    "Time to answer one check.",
    ["service"],
    buckets=_CHECK_BUCKETS,
)

REFUSAL_REASONS = (
    "undecodable",
    "invalid_event",
    "unknown_event_type",
    "signature_malformed",
    "signature_unknown_key",
    "signature_issuer_not_allowed",
    "signature_source_mismatch",
    "signature_bad_signature",
)
CHECK_OUTCOMES = ("blocked", "clear", "stale", "refused")


class _Switch:
    """Whether the counting below counts: decided at start-up by `start_metrics_server`
    from REDLINE_METRICS (off: no-ops; the benchmark compares the two), never at import."""

    on = True


_COUNTING = _Switch()


def count_published(outbox: str, topics: Sequence[str]) -> None:
    """Count events a relay published, by topic."""
    if _COUNTING.on:
        for topic, count in Counter_(topics).items():
            EVENTS_PUBLISHED.labels(outbox, topic).inc(count)


def count_quarantined(outbox: str, reason: str, count: int) -> None:
    """Count events a relay set aside; `reason` is the Kafka error class (a bounded set)."""
    if _COUNTING.on:
        EVENTS_QUARANTINED.labels(outbox, reason).inc(count)


def show_quarantined(outbox: str, count: int) -> None:
    """How many events of an outbox are set aside now, as its relay last read."""
    OUTBOX_QUARANTINED.labels(outbox).set(count)


def count_measures(department: str, applied: int, lifted: int) -> None:
    if _COUNTING.on:
        MEASURES_APPLIED.labels(department).inc(applied)
        MEASURES_LIFTED.labels(department).inc(lifted)


def prepare_consumer(consumer: str, topics: Sequence[str]) -> None:
    """Create a consumer's series at zero, so an alert on their increase has a baseline."""
    for reason in REFUSAL_REASONS:
        DEAD_LETTERS.labels(consumer, reason)
    for topic in topics:
        EVENTS_CONSUMED.labels(consumer, topic)
    BATCH_SECONDS.labels(consumer)


def observe_batch(
    consumer: str, messages: Sequence[RawMessage], seconds: float, dead_letters: Sequence[str]
) -> None:
    """Count one batch a consumer committed: its messages by topic, its refusals by reason."""
    if not _COUNTING.on:
        return
    by_topic = Counter_(message.topic for message in messages)
    for topic, count in by_topic.items():
        EVENTS_CONSUMED.labels(consumer, topic).inc(count)
    for reason in dead_letters:
        DEAD_LETTERS.labels(consumer, reason).inc()
    BATCH_SECONDS.labels(consumer).observe(seconds)


@dataclass
class BusSnapshot:
    """The state of the whole bus, read by the monitor from the broker and the databases."""

    consumer_lag: dict[tuple[str, str], int] = field(default_factory=dict)
    outbox_backlog: dict[str, int] = field(default_factory=dict)
    outbox_oldest_age: dict[str, float] = field(default_factory=dict)
    active_blocks: dict[str, int] = field(default_factory=dict)
    responses_pending: dict[str, int] = field(default_factory=dict)
    responses_overdue: dict[str, int] = field(default_factory=dict)
    cases_filed: dict[str, int] = field(default_factory=dict)
    accountability_referrals: dict[str, int] = field(default_factory=dict)
    referrals_open: dict[str, int] = field(default_factory=dict)
    referrals_overdue: dict[str, int] = field(default_factory=dict)
    read_at: float = 0.0  # Unix time of the read these figures come from

    def fill_zeros(
        self, measures: Sequence[str], departments: Sequence[str], receivers: Sequence[str] = ()
    ) -> None:
        """Every measure, department and referral receiver gets a series, 0 when nothing is
        counted: a panel or an alert then tells "none" from "not reported"."""
        for counts, keys in (
            (self.active_blocks, measures),
            (self.responses_pending, departments),
            (self.responses_overdue, departments),
            (self.referrals_open, receivers),
            (self.referrals_overdue, receivers),
        ):
            for key in keys:
                counts.setdefault(key, 0)


class BusCollector(Collector):
    """Exposes the monitor's latest snapshot. Case counts are counters: the registry never
    deletes a case, so its count only grows."""

    def __init__(self) -> None:
        self.snapshot = BusSnapshot()

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield _family(
            GaugeMetricFamily,
            "redline_consumer_lag_messages",
            "Messages on the topic not yet committed by the consumer group.",
            ["consumer", "topic"],
            {key: float(v) for key, v in s.consumer_lag.items()},
        )
        for name, text, label, values in _GAUGES:
            yield _family(GaugeMetricFamily, name, text, [label], _keyed(values(s)))
        yield GaugeMetricFamily(
            "redline_monitor_last_read_timestamp_seconds",
            "When the monitor last read the bus; older figures are served until it reads again.",
            value=s.read_at,
        )
        for name, text, label, values in _COUNTERS:
            yield _family(CounterMetricFamily, name, text, [label], _keyed(values(s)))


# The snapshot's series with one label, in the order they are exposed: (metric, help, label,
# where the snapshot holds its figures).
_Series = tuple[str, str, str, Callable[[BusSnapshot], Mapping[str, float] | Mapping[str, int]]]
_GAUGES: tuple[_Series, ...] = (
    (
        "redline_outbox_backlog_events",
        "Events in an outbox not yet published.",
        "outbox",
        lambda s: s.outbox_backlog,
    ),
    (
        "redline_outbox_oldest_unsent_age_seconds",
        "Age of the oldest unpublished event in an outbox (0 when empty).",
        "outbox",
        lambda s: s.outbox_oldest_age,
    ),
    (
        "redline_active_blocks",
        "Cases blocked now, by measure.",
        "measure",
        lambda s: s.active_blocks,
    ),
    (
        "redline_responses_pending",
        "Answers a department owes, not yet due.",
        "department",
        lambda s: s.responses_pending,
    ),
    (
        "redline_responses_overdue",
        "Answers a department owes past the deadline.",
        "department",
        lambda s: s.responses_overdue,
    ),
    (
        "redline_referrals_open",
        "Referrals a body has received and not yet answered with an outcome.",
        "body",
        lambda s: s.referrals_open,
    ),
    (
        "redline_referrals_overdue",
        "Referrals past their answer or outcome deadline, by receiving body.",
        "body",
        lambda s: s.referrals_overdue,
    ),
)
# Counters: the registry never deletes a case, so these counts only grow.
_COUNTERS: tuple[_Series, ...] = (
    ("redline_cases_filed", "Cases filed, by township.", "township", lambda s: s.cases_filed),
    (
        "redline_accountability_referrals",
        "Cases that started the accountability procedure (seed §四(五)), by township.",
        "township",
        lambda s: s.accountability_referrals,
    ),
)


def _keyed(values: Mapping[str, float] | Mapping[str, int]) -> dict[tuple[str, ...], float]:
    return {(key,): float(value) for key, value in values.items()}


def _family(
    kind: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    text: str,
    labels: list[str],
    values: Mapping[tuple[str, ...], float],
) -> Metric:
    family = kind(name, text, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def start_metrics_server(settings: Settings) -> int | None:
    """At a service's start: count or not (REDLINE_METRICS), and serve /metrics on
    REDLINE_METRICS_PORT at REDLINE_METRICS_HOST, if a port is set; returns the port."""
    _COUNTING.on = settings.metrics
    if settings.metrics_port is None:
        return None
    start_http_server(settings.metrics_port, addr=settings.metrics_host)
    return settings.metrics_port
