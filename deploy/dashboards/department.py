"""One dashboard per enforcing department: its measures, the answers it owes, its consumer
and its acknowledgements outbox, and the catalogue's account of its measures."""

from __future__ import annotations

from deploy.dashboards.board import DEPARTMENT_TAG, Board, Frame, Json, dashboard, department_uid
from deploy.dashboards.board import links as dashboard_links
from deploy.dashboards.panels import (
    GREEN,
    RANGE,
    RATE,
    RED_FROM_ONE,
    Query,
    alternatives,
    bargauge_panel,
    service_health,
    staleness_panel,
    stat_panel,
    text_panel,
    timeseries_panel,
)
from deploy.model import JOB, department_process
from events.catalogue import Department
from events.decisions import describe


def _measures_markdown(department: Department) -> str:
    lines = [
        f"**{department.name}** ({department.name_zh}), `{department.code}`, {department.kind}.",
        "",
        "| measure | starts at | when | held against | lifted by | answer within | seed "
        "| legal basis |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in department.measures:
        lifted = ", ".join(trigger.value for trigger in m.lifted_by)
        lines.append(
            f"| `{m.code}` {m.name} ({m.name_zh}) | {m.starts_at.value} | {describe(m.when)} "
            f"| {m.targets.value} | {lifted} | {m.response_deadline_hours} h "
            f"| §{m.seed_section} | {m.legal_basis} |"
        )
    return "\n".join(lines) + "\n"


def _headline(board: Board, department: Department) -> None:
    dept = f'department="{department.code}"'
    consumer = f'consumer="{department.code}"'
    board.row(f"{department.name_zh} · {department.name}")
    for title, description, query, steps in (
        (
            "Applied",
            "Measures applied in the time range.",
            Query(f"sum(increase(redline_measures_applied_total{{{dept}}}[{RANGE}]))", "", True),
            GREEN,
        ),
        (
            "Lifted",
            "Measures lifted in the time range.",
            Query(f"sum(increase(redline_measures_lifted_total{{{dept}}}[{RANGE}]))", "", True),
            GREEN,
        ),
        (
            "Pending",
            "Answers owed, not yet due.",
            Query(f"sum(redline_responses_pending{{{dept}}})"),
            GREEN,
        ),
        (
            "Overdue",
            "Answers past the deadline (alert RedlineResponsesOverdue).",
            Query(f"sum(redline_responses_overdue{{{dept}}})"),
            RED_FROM_ONE,
        ),
        (
            "Consumer lag",
            "Messages not yet committed by this department's consumer group.",
            Query(f"sum(redline_consumer_lag_messages{{{consumer}}})"),
            GREEN,
        ),
        (
            "Dead letters",
            "Messages this department refused in the time range.",
            Query(f"sum(increase(redline_dead_letters_total{{{consumer}}}[{RANGE}]))", "", True),
            RED_FROM_ONE,
        ),
    ):
        board.add(stat_panel(title, description, query, steps=steps), 4, 4)


def _flow(board: Board, department: Department) -> None:
    dept = f'department="{department.code}"'
    applied = f"60 * sum(rate(redline_measures_applied_total{{{dept}}}[{RATE}]))"
    lifted = f"60 * sum(rate(redline_measures_lifted_total{{{dept}}}[{RATE}]))"
    for title, description, queries, unit in (
        (
            "Measures applied and lifted",
            "Per minute.",
            [Query(applied, "applied"), Query(lifted, "lifted")],
            "cpm",
        ),
        (
            "Responses pending and overdue",
            "Answers this department owes: not yet due, and past the deadline.",
            [
                Query(f"sum(redline_responses_pending{{{dept}}})", "pending"),
                Query(f"sum(redline_responses_overdue{{{dept}}})", "overdue"),
            ],
            "short",
        ),
    ):
        board.add(timeseries_panel(title, description, queries, unit=unit), 12, 8)


def _consumer(board: Board, department: Department) -> None:
    consumer = f'consumer="{department.code}"'
    consumed = f"sum by (topic) (rate(redline_events_consumed_total{{{consumer}}}[{RATE}]))"
    lag = f"sum by (topic) (redline_consumer_lag_messages{{{consumer}}})"
    board.add(
        timeseries_panel(
            "Consumed and lag",
            "Messages consumed per second and left to consume, by topic.",
            [Query(consumed, "consumed/s {{topic}}"), Query(lag, "lag {{topic}}")],
        ),
        8,
        8,
    )
    latency = [
        Query(
            f"histogram_quantile({q}, sum by (le) "
            f"(rate(redline_handler_duration_seconds_bucket{{{consumer}}}[{RATE}])))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.99)
    ]
    board.add(
        timeseries_panel(
            "Batch latency", "Time to decode, verify and commit one batch.", latency, unit="s"
        ),
        8,
        8,
    )
    dead = f"sum by (reason) (increase(redline_dead_letters_total{{{consumer}}}[{RATE}])) > 0"
    board.add(
        timeseries_panel(
            "Dead letters by reason",
            "Messages refused into the dead-letter topic (alert RedlineDeadLetters).",
            [Query(dead, "{{reason}}")],
            bars=True,
            stacked=True,
        ),
        8,
        8,
    )


def _outbox(board: Board, department: Department) -> None:
    outbox = f'outbox="{department_process(department).outbox}"'
    board.add(
        timeseries_panel(
            "Acknowledgements outbox",
            "This department's outbox of acknowledgements: events published per second, "
            "backlog, and the age of the oldest unsent one.",
            [
                Query(
                    f"sum(rate(redline_events_published_total{{{outbox}}}[{RATE}]))",
                    "published/s",
                ),
                Query(f"sum(redline_outbox_backlog_events{{{outbox}}})", "backlog"),
                Query(
                    f"max(redline_outbox_oldest_unsent_age_seconds{{{outbox}}})", "oldest age (s)"
                ),
            ],
        ),
        12,
        8,
    )


def _blocks(board: Board, department: Department) -> None:
    measures = alternatives([m.code for m in department.measures])
    active = f'sum by (measure) (redline_active_blocks{{measure=~"{measures}"}})'
    board.add(
        bargauge_panel(
            "Active blocks of its measures",
            "Cases blocked now under this department's measures (a measure shared by several "
            "departments counts them all).",
            Query(active, "{{measure}}", True),
        ),
        12,
        8,
    )
    if department.kind == "government":
        return
    board.add(
        staleness_panel(
            "Subscriber replicas",
            "Age of the replicas that enforce these measures at the counter",
            f'measure=~"{measures}"',
        ),
        24,
        8,
    )


def department_dashboard(department: Department) -> Json:
    code = department.code
    board = Board()
    _headline(board, department)
    _flow(board, department)
    _consumer(board, department)
    _outbox(board, department)
    _blocks(board, department)
    process = department_process(department)
    board.add(service_health("Process", f'job="{JOB}", service="{process.name}"'), 6, 6)
    board.add(text_panel("Measures (catalogue)", _measures_markdown(department)), 18, 6)
    frame = Frame(
        department_uid(code),
        f"Redline · {department.name_zh} {department.name}",
        f"Department {code}: its measures, answers, consumer and outbox. "
        "Generated by deploy/generate.py from the catalogue: do not edit.",
        (DEPARTMENT_TAG, department.kind),
        dashboard_links(),
    )
    return dashboard(frame, board)
