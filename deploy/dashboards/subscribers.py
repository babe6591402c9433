"""The subscribers' dashboard: utilities and banks checking customers at the counter
against their local blocklist replicas, selectable by subscriber."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import dashboard as model

from deploy.dashboards.board import SUBSCRIBERS_UID, Board, Frame, Json, dashboard, links
from deploy.dashboards.panels import (
    GREEN,
    RANGE,
    RATE,
    SOURCE,
    Query,
    alternatives,
    bargauge_panel,
    red_from,
    service_health,
    staleness_panel,
    stat_panel,
    timeseries_panel,
)
from deploy.model import JOB, STALENESS_BOUND_SECONDS
from events.topics import BLOCKLIST_MEASURES

SUBSCRIBER = 'subscriber=~"$subscriber"'
PROCESS = 'process=~"subscriber-$subscriber"'
CHECKS = f'service="subscriber", {PROCESS}'
VARIABLE_QUERY = "label_values(redline_subscriber_staleness_seconds, subscriber)"


def _check_latency(q: float, selector: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (le) "
        f"(rate(redline_check_duration_seconds_bucket{{{selector}}}[{RATE}])))"
    )


def _replicas(board: Board) -> None:
    board.row("Replicas")
    for title, description, expr, unit, steps in (
        (
            "Worst staleness",
            f"Age of the oldest replica; above {STALENESS_BOUND_SECONDS:g} s it answers 'stale'.",
            f"max(redline_subscriber_staleness_seconds{{{SUBSCRIBER}}})",
            "s",
            red_from(STALENESS_BOUND_SECONDS),
        ),
        (
            "Checks",
            "Checks answered per second by the selected subscribers.",
            f"sum(rate(redline_check_requests_total{{{CHECKS}}}[{RATE}]))",
            "reqps",
            GREEN,
        ),
        (
            "Stale answers",
            "Checks answered 'stale' per second: the counter could not be told clear or blocked.",
            f'sum(rate(redline_check_requests_total{{{CHECKS}, outcome="stale"}}[{RATE}]))',
            "reqps",
            red_from(0.001),
        ),
        (
            "Check latency p99",
            "Time to answer one check at the counter, 99th percentile.",
            _check_latency(0.99, CHECKS),
            "s",
            GREEN,
        ),
    ):
        board.add(stat_panel(title, description, Query(expr), unit=unit, steps=steps), 6, 4)
    board.add(
        staleness_panel(
            "Replica staleness",
            "Seconds since each replica's least recently vouched partition",
            SUBSCRIBER,
        ),
        24,
        8,
    )


def _counter(board: Board) -> None:
    board.row("Checks at the counter")
    for title, description, by, stacked in (
        (
            "Check rate by outcome",
            "blocked, clear, stale (fail closed) and refused (bad input), per second.",
            "outcome",
            True,
        ),
        (
            "Check rate by subscriber",
            "Checks answered per second, per subscriber process.",
            "process",
            False,
        ),
    ):
        rate = f"sum by ({by}) (rate(redline_check_requests_total{{{CHECKS}}}[{RATE}]))"
        board.add(
            timeseries_panel(
                title, description, [Query(rate, f"{{{{{by}}}}}")], unit="reqps", stacked=stacked
            ),
            12,
            8,
        )
    latency = [
        *(Query(_check_latency(q, CHECKS), f"subscribers p{round(q * 100)}") for q in (0.5, 0.99)),
        Query(_check_latency(0.99, 'service="registry"'), "registry p99"),
    ]
    board.add(
        timeseries_panel(
            "Check latency",
            "p50 and p99 at the subscribers, p99 at the central registry check for comparison.",
            latency,
            unit="s",
        ),
        12,
        8,
    )
    outcomes = (
        f"sort_desc(sum by (outcome) (increase(redline_check_requests_total{{{CHECKS}}}[{RANGE}])))"
    )
    board.add(
        bargauge_panel(
            "Outcomes in the time range",
            "Checks answered in the time range, by outcome.",
            Query(outcomes, "{{outcome}}", True),
        ),
        12,
        8,
    )


def _blocklists(board: Board) -> None:
    board.row("Blocklists and processes")
    blocklists = alternatives(BLOCKLIST_MEASURES)
    active = f'sort_desc(sum by (measure) (redline_active_blocks{{measure=~"{blocklists}"}}))'
    board.add(
        bargauge_panel(
            "Active blocks per blocklist",
            "Cases blocked now under each measure served as a blocklist.",
            Query(active, "{{measure}}", True),
        ),
        12,
        8,
    )
    board.add(service_health("Subscriber processes", f'job="{JOB}", {PROCESS}'), 12, 8)


def _subscriber_variable() -> builders.QueryVariable:
    return (
        builders.QueryVariable("subscriber")
        .label("Subscriber")
        .datasource(SOURCE)
        .query({"query": VARIABLE_QUERY, "refId": "subscriber"})
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .all_value(".*")
        .multi(True)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .options([])
    )


def subscribers() -> Json:
    board = Board()
    _replicas(board)
    _counter(board)
    _blocklists(board)
    frame = Frame(
        SUBSCRIBERS_UID,
        "Redline · subscribers",
        "Utilities and banks checking customers against local blocklist replicas. "
        "Generated by deploy/generate.py: do not edit.",
        ("subscribers",),
        links(subscribers=False),
    )
    board_json = dashboard(frame, board, (_subscriber_variable(),))
    # The SDK's variable model has no `definition` (the text Grafana's editor shows and
    # keeps beside the query); without it the editor shows an empty query.
    (variable,) = board_json["templating"]["list"]
    variable["definition"] = VARIABLE_QUERY
    return board_json
