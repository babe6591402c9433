"""The operators' overview: the whole loop on one page, Kafka underneath, blocks and
accountability by township, checks and process health."""

from __future__ import annotations

from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import dashboard as model

from deploy.dashboards.board import OVERVIEW_UID, Board, Frame, Json, dashboard, links
from deploy.dashboards.panels import (
    GREEN,
    RANGE,
    RATE,
    RED_FROM_ONE,
    Query,
    Steps,
    alternatives,
    bargauge_panel,
    service_health,
    stat_panel,
    table_panel,
    thresholds,
    timeseries_panel,
)
from deploy.model import JOB, OUTBOX_AGE_ALERT_SECONDS, STALENESS_BOUND_SECONDS
from events.catalogue import Catalogue


def _in_range(metric: str) -> Query:
    return Query(f"sum(increase({metric}[{RANGE}]))", instant=True)


def _per_minute(metric: str, legend: str) -> Query:
    return Query(f"60 * sum(rate({metric}[{RATE}]))", legend)


_LOOP_STATS: tuple[tuple[str, str, Query, str, Steps], ...] = (
    (
        "Cases filed",
        "Cases filed (立案) in the time range, all townships.",
        _in_range("redline_cases_filed_total"),
        "short",
        GREEN,
    ),
    (
        "Measures applied",
        "Blocks the departments applied (acknowledged) in the time range.",
        _in_range("redline_measures_applied_total"),
        "short",
        GREEN,
    ),
    (
        "Responses pending",
        "Measures the departments owe an answer on, not yet due.",
        Query("sum(redline_responses_pending)"),
        "short",
        GREEN,
    ),
    (
        "Responses overdue",
        "Measures not answered by their deadline (alert RedlineResponsesOverdue).",
        Query("sum(redline_responses_overdue)"),
        "short",
        RED_FROM_ONE,
    ),
    (
        "Measures lifted",
        "Blocks lifted (restoration verified, or case revoked) in the time range.",
        _in_range("redline_measures_lifted_total"),
        "short",
        GREEN,
    ),
    (
        "Active blocks",
        "Cases blocked now, summed over every measure.",
        Query("sum(redline_active_blocks)"),
        "short",
        GREEN,
    ),
    (
        "Dead letters",
        "Messages refused into the dead-letter topic in the time range.",
        _in_range("redline_dead_letters_total"),
        "short",
        RED_FROM_ONE,
    ),
    (
        "Consumer lag",
        "Messages not yet committed, summed over every consumer group.",
        Query("sum(redline_consumer_lag_messages)"),
        "short",
        GREEN,
    ),
    (
        "Outbox backlog",
        "Events written to an outbox and not yet published.",
        Query("sum(redline_outbox_backlog_events)"),
        "short",
        GREEN,
    ),
    (
        "Oldest unsent event",
        "Age of the oldest unpublished outbox event (alert RedlineOutboxStuck).",
        Query("max(redline_outbox_oldest_unsent_age_seconds)"),
        "s",
        (
            ("green", None),
            ("orange", OUTBOX_AGE_ALERT_SECONDS / 5),
            ("red", OUTBOX_AGE_ALERT_SECONDS),
        ),
    ),
    (
        "Processes down",
        "Redline processes Prometheus cannot scrape (alert RedlineServiceDown).",
        Query(f'count(up{{job="{JOB}"}} == 0) or vector(0)'),
        "short",
        RED_FROM_ONE,
    ),
    (
        "Stale replicas",
        f"Subscriber replicas older than {STALENESS_BOUND_SECONDS:g} s "
        "(alert RedlineSubscriberReplicaStale).",
        Query(
            f"count(redline_subscriber_staleness_seconds > {STALENESS_BOUND_SECONDS:g}) "
            "or vector(0)"
        ),
        "short",
        RED_FROM_ONE,
    ),
)


def _loop(board: Board, catalogue: Catalogue) -> None:
    board.row("The loop: cases filed → measures applied → responses → measures lifted")
    for title, description, query, unit, steps in _LOOP_STATS:
        board.add(stat_panel(title, description, query, unit=unit, steps=steps), 4, 4)
    throughput = [
        _per_minute("redline_cases_filed_total", "cases filed"),
        _per_minute("redline_measures_applied_total", "measures applied"),
        _per_minute("redline_measures_lifted_total", "measures lifted"),
        _per_minute("redline_accountability_referrals_total", "accountability referrals"),
    ]
    board.add(
        timeseries_panel(
            "Loop throughput",
            "Cases filed, measures applied and lifted, accountability referrals, per minute.",
            throughput,
            unit="cpm",
        ),
        12,
        8,
    )
    owed = [
        Query("sum(redline_responses_pending)", "pending"),
        Query("sum(redline_responses_overdue)", "overdue"),
    ]
    board.add(
        timeseries_panel(
            "Responses pending and overdue",
            "What the departments owe: answers not yet due, and answers past the deadline.",
            owed,
        ),
        12,
        8,
    )
    board.add(_departments_table(alternatives(catalogue.codes)), 24, 10)


def _departments_table(departments: str) -> table.Panel:
    def by_department(expr: str) -> str:
        return (
            f'sum by (department) (label_replace({expr}, "department", "$1", "consumer", "(.+)"))'
        )

    lag = f'redline_consumer_lag_messages{{consumer=~"{departments}"}}'
    dead = f'increase(redline_dead_letters_total{{consumer=~"{departments}"}}[{RANGE}])'
    columns = {
        "applied": f"sum by (department) (increase(redline_measures_applied_total[{RANGE}]))",
        "lifted": f"sum by (department) (increase(redline_measures_lifted_total[{RANGE}]))",
        "pending": "sum by (department) (redline_responses_pending)",
        "overdue": "sum by (department) (redline_responses_overdue)",
        "lag": by_department(lag),
        "dead letters": by_department(dead),
    }
    link = {
        "title": "Department dashboard",
        "url": "/d/redline-dept-${__value.raw}?${__url_time_range}",
    }
    overdue = [
        model.DynamicConfigValue(id_val="thresholds", value=thresholds(RED_FROM_ONE).build()),
        model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
    ]
    return (
        table_panel(
            "Departments",
            "Per department: measures applied and lifted in the time range, answers owed "
            "(pending) and late (overdue) now, consumer lag, dead letters. Click a department.",
            "department",
            columns,
        )
        .override_by_name("department", [model.DynamicConfigValue(id_val="links", value=[link])])
        .override_by_name("overdue", overdue)
    )


def _kafka(board: Board) -> None:
    board.row("Kafka: throughput, lag, dead letters, outboxes")
    for title, description, expr, legend, unit in (
        (
            "Events published by topic",
            "Events the relays published, acknowledged by the broker.",
            f"sum by (topic) (rate(redline_events_published_total[{RATE}]))",
            "{{topic}}",
            "ops",
        ),
        (
            "Events consumed by consumer",
            "Messages each consumer took its effect on (or refused).",
            f"sum by (consumer) (rate(redline_events_consumed_total[{RATE}]))",
            "{{consumer}}",
            "ops",
        ),
        (
            "Consumer lag",
            "Messages on the topic not yet committed by each consumer group "
            "(alert RedlineConsumerLagGrowing).",
            "sum by (consumer, topic) (redline_consumer_lag_messages)",
            "{{consumer}} · {{topic}}",
            "short",
        ),
        (
            "Handler latency p99",
            "Time to decode, verify and commit one batch, 99th percentile, per consumer.",
            "histogram_quantile(0.99, sum by (consumer, le) "
            f"(rate(redline_handler_duration_seconds_bucket[{RATE}])))",
            "{{consumer}}",
            "s",
        ),
    ):
        board.add(timeseries_panel(title, description, [Query(expr, legend)], unit=unit), 12, 8)
    _outboxes(board)


def _outboxes(board: Board) -> None:
    dead = Query(
        f"sum by (consumer, reason) (increase(redline_dead_letters_total[{RATE}])) > 0",
        "{{consumer}}: {{reason}}",
    )
    board.add(
        timeseries_panel(
            "Dead letters by consumer and reason",
            "Messages refused into the dead-letter topic (alert RedlineDeadLetters).",
            [dead],
            bars=True,
            stacked=True,
        ),
        8,
        8,
    )
    board.add(
        timeseries_panel(
            "Outbox backlog",
            "Events written to each outbox and not yet published.",
            [Query("sum by (outbox) (redline_outbox_backlog_events)", "{{outbox}}")],
        ),
        8,
        8,
    )
    board.add(
        timeseries_panel(
            "Oldest unsent outbox event",
            "Age of each outbox's oldest unpublished event; the line is the alert bound.",
            [Query("max by (outbox) (redline_outbox_oldest_unsent_age_seconds)", "{{outbox}}")],
            unit="s",
            threshold_line=OUTBOX_AGE_ALERT_SECONDS,
        ),
        8,
        8,
    )


def _blocks(board: Board) -> None:
    board.row("Blocks and accountability")
    for title, description, expr, legend, steps in (
        (
            "Active blocks by measure",
            "Cases blocked now, per measure.",
            "sort_desc(sum by (measure) (redline_active_blocks))",
            "{{measure}}",
            GREEN,
        ),
        (
            "Accountability referrals by township",
            "Cases over the seed §四(五) threshold (5 mu permanent basic farmland or 10 mu "
            "cultivated land) in the time range, per township.",
            "sort_desc(sum by (township) "
            f"(increase(redline_accountability_referrals_total[{RANGE}])))",
            "{{township}}",
            RED_FROM_ONE,
        ),
        (
            "Cases filed by township",
            "Cases filed in the time range, per township (territorial responsibility).",
            f"sort_desc(sum by (township) (increase(redline_cases_filed_total[{RANGE}])))",
            "{{township}}",
            GREEN,
        ),
    ):
        board.add(bargauge_panel(title, description, Query(expr, legend, True), steps=steps), 8, 10)


def _checks(board: Board) -> None:
    board.row("Checks and processes")
    checks = Query(
        f"sum by (service, outcome) (rate(redline_check_requests_total[{RATE}]))",
        "{{service}}: {{outcome}}",
    )
    board.add(
        timeseries_panel(
            "Checks by service and outcome",
            "Blocklist checks answered by the registry (central) and the subscribers.",
            [checks],
            unit="reqps",
        ),
        12,
        8,
    )
    latency = Query(
        "histogram_quantile(0.99, sum by (service, le) "
        f"(rate(redline_check_duration_seconds_bucket[{RATE}])))",
        "{{service}}",
    )
    board.add(
        timeseries_panel(
            "Check latency p99", "Time to answer one check, 99th percentile.", [latency], unit="s"
        ),
        12,
        8,
    )
    board.add(service_health("Processes", f'job="{JOB}"'), 24, 8)


def overview(catalogue: Catalogue) -> Json:
    board = Board()
    _loop(board, catalogue)
    _kafka(board)
    _blocks(board)
    _checks(board)
    frame = Frame(
        OVERVIEW_UID,
        "Redline · overview",
        "The whole joint-punishment loop. Generated by deploy/generate.py: do not edit.",
        ("overview",),
        links(overview=False),
    )
    return dashboard(frame, board)
