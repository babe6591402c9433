"""Grafana dashboards as data: the overview of the loop, one per department, subscribers.

Every query uses only the metrics of services/metrics.py, the subscriber connector's
`redline_subscriber_staleness_seconds`, and `up`; tests/unit/test_deploy.py checks the
names and tests/unit/test_promtool.py has promtool parse every expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deploy.model import (
    DATASOURCE_UID,
    JOB,
    OUTBOX_AGE_ALERT_SECONDS,
    STALENESS_BOUND_SECONDS,
    department_process,
)
from events.catalogue import Catalogue, Department
from events.decisions import describe
from events.topics import BLOCKLIST_MEASURES

Json = dict[str, Any]

DATASOURCE: Json = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
OVERVIEW_UID = "redline-overview"
SUBSCRIBERS_UID = "redline-subscribers"
DEPARTMENT_TAG = "redline-department"
GRID_WIDTH = 24
RATE = "$__rate_interval"
RANGE = "$__range"


def department_uid(code: str) -> str:
    return f"redline-dept-{code}"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def target(self, ref: str) -> Json:
        target: Json = {
            "datasource": DATASOURCE,
            "refId": ref,
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "instant": self.instant,
        }
        if self.table:
            target["format"] = "table"
        return target


def _thresholds(*steps: tuple[str, float | None]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


GREEN = _thresholds(("green", None))
RED_FROM_ONE = _thresholds(("green", None), ("red", 1))


def panel(
    kind: str,
    title: str,
    description: str,
    queries: list[Query],
    *,
    unit: str = "short",
    thresholds: Json | None = None,
    options: Json | None = None,
    custom: Json | None = None,
    **extra: Any,
) -> Json:
    defaults: Json = {"unit": unit, "thresholds": thresholds or GREEN}
    if custom is not None:
        defaults["custom"] = custom
    if kind in ("stat", "bargauge"):
        defaults["color"] = {"mode": "thresholds"}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [q.target(chr(ord("A") + i)) for i, q in enumerate(queries)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        **extra,
    }


_REDUCE_LAST: Json = {"calcs": ["lastNotNull"], "fields": "", "values": False}


def stat(
    title: str,
    description: str,
    query: Query,
    *,
    unit: str = "short",
    thresholds: Json | None = None,
) -> Json:
    return panel(
        "stat",
        title,
        description,
        [query],
        unit=unit,
        thresholds=thresholds,
        options={
            "reduceOptions": _REDUCE_LAST,
            "colorMode": "background",
            "graphMode": "none" if query.instant else "area",
            "justifyMode": "auto",
            "textMode": "auto",
            "orientation": "auto",
        },
    )


def timeseries(
    title: str,
    description: str,
    queries: list[Query],
    *,
    unit: str = "short",
    bars: bool = False,
    stacked: bool = False,
    threshold_line: float | None = None,
) -> Json:
    thresholds = None
    style = {"mode": "off"}
    if threshold_line is not None:
        thresholds = _thresholds(("green", None), ("red", threshold_line))
        style = {"mode": "line+area"}
    return panel(
        "timeseries",
        title,
        description,
        queries,
        unit=unit,
        thresholds=thresholds,
        custom={
            "drawStyle": "bars" if bars else "line",
            "lineWidth": 1,
            "fillOpacity": 60 if bars else 10,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
            "thresholdsStyle": style,
        },
        options={
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def bargauge(title: str, description: str, query: Query, *, thresholds: Json | None = None) -> Json:
    return panel(
        "bargauge",
        title,
        description,
        [query],
        thresholds=thresholds,
        options={
            "reduceOptions": _REDUCE_LAST,
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
            "minVizHeight": 16,
            "minVizWidth": 8,
            "maxVizHeight": 300,
        },
    )


def text(title: str, content: str) -> Json:
    return {
        "type": "text",
        "title": title,
        "options": {"mode": "markdown", "content": content},
    }


def service_health(title: str, selector: str) -> Json:
    """UP/DOWN per process, from Prometheus' own `up`."""
    health = panel(
        "stat",
        title,
        "1 while Prometheus can scrape the process, 0 when it cannot (alert RedlineServiceDown).",
        [Query(f"up{{{selector}}}", "{{service}}")],
        thresholds=_thresholds(("red", None), ("green", 1)),
        options={
            "reduceOptions": _REDUCE_LAST,
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "center",
            "textMode": "value_and_name",
            "orientation": "auto",
        },
    )
    health["fieldConfig"]["defaults"]["mappings"] = [
        {
            "type": "value",
            "options": {
                "0": {"text": "DOWN", "color": "red", "index": 0},
                "1": {"text": "UP", "color": "green", "index": 1},
            },
        }
    ]
    return health


@dataclass
class Grid:
    """Lays panels out left to right in rows of 24 columns, numbering them."""

    panels: list[Json] = field(default_factory=list)
    x: int = 0
    y: int = 0
    height: int = 0

    def _newline(self) -> None:
        self.x, self.y, self.height = 0, self.y + self.height, 0

    def row(self, title: str) -> None:
        if self.x:
            self._newline()
        self._place({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self._newline()

    def add(self, item: Json, width: int, height: int) -> None:
        if self.x + width > GRID_WIDTH:
            self._newline()
        self._place(item, width, height)

    def _place(self, item: Json, width: int, height: int) -> None:
        grid = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.panels.append({"id": len(self.panels) + 1, "gridPos": grid, **item})
        self.x += width
        self.height = max(self.height, height)


def dashboard(
    uid: str,
    title: str,
    description: str,
    tags: list[str],
    grid: Grid,
    *,
    variables: list[Json] | None = None,
    links: list[Json] | None = None,
) -> Json:
    return {
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["redline", *tags],
        "editable": False,
        "graphTooltip": 1,
        "timezone": "browser",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "annotations": {"list": []},
        "templating": {"list": variables or []},
        "links": links or [],
        "panels": grid.panels,
    }


def _links(
    *, departments: bool = True, overview: bool = True, subscribers: bool = True
) -> list[Json]:
    links: list[Json] = []
    if overview:
        links.append(_link("Overview", f"/d/{OVERVIEW_UID}"))
    if departments:
        links.append(
            {
                "title": "Departments",
                "type": "dashboards",
                "tags": [DEPARTMENT_TAG],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
                "targetBlank": False,
            }
        )
    if subscribers:
        links.append(_link("Subscribers", f"/d/{SUBSCRIBERS_UID}"))
    return links


def _link(title: str, url: str) -> Json:
    return {
        "title": title,
        "type": "link",
        "url": url,
        "keepTime": True,
        "includeVars": False,
        "targetBlank": False,
    }


def _alternatives(values: list[str] | tuple[str, ...]) -> str:
    return "|".join(values)


def overview(catalogue: Catalogue) -> Json:
    departments = _alternatives(catalogue.codes)
    g = Grid()
    g.row("The loop: cases filed → measures applied → responses → measures lifted")
    for title, description, query, thresholds in (
        (
            "Cases filed",
            "Cases filed (立案) in the time range, all townships.",
            Query(f"sum(increase(redline_cases_filed_total[{RANGE}]))", instant=True),
            None,
        ),
        (
            "Measures applied",
            "Blocks the departments applied (acknowledged) in the time range.",
            Query(f"sum(increase(redline_measures_applied_total[{RANGE}]))", instant=True),
            None,
        ),
        (
            "Responses pending",
            "Measures the departments owe an answer on, not yet due.",
            Query("sum(redline_responses_pending)"),
            None,
        ),
        (
            "Responses overdue",
            "Measures not answered by their deadline (alert RedlineResponsesOverdue).",
            Query("sum(redline_responses_overdue)"),
            RED_FROM_ONE,
        ),
        (
            "Measures lifted",
            "Blocks lifted (restoration verified, or case revoked) in the time range.",
            Query(f"sum(increase(redline_measures_lifted_total[{RANGE}]))", instant=True),
            None,
        ),
        (
            "Active blocks",
            "Cases blocked now, summed over every measure.",
            Query("sum(redline_active_blocks)"),
            None,
        ),
    ):
        g.add(stat(title, description, query, thresholds=thresholds), 4, 4)
    for title, description, query, unit, thresholds in (
        (
            "Dead letters",
            "Messages refused into the dead-letter topic in the time range.",
            Query(f"sum(increase(redline_dead_letters_total[{RANGE}]))", instant=True),
            "short",
            RED_FROM_ONE,
        ),
        (
            "Consumer lag",
            "Messages not yet committed, summed over every consumer group.",
            Query("sum(redline_consumer_lag_messages)"),
            "short",
            None,
        ),
        (
            "Outbox backlog",
            "Events written to an outbox and not yet published.",
            Query("sum(redline_outbox_backlog_events)"),
            "short",
            None,
        ),
        (
            "Oldest unsent event",
            "Age of the oldest unpublished outbox event (alert RedlineOutboxStuck).",
            Query("max(redline_outbox_oldest_unsent_age_seconds)"),
            "s",
            _thresholds(
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
    ):
        g.add(stat(title, description, query, unit=unit, thresholds=thresholds), 4, 4)
    g.add(
        timeseries(
            "Loop throughput",
            "Cases filed, measures applied and lifted, accountability referrals, per minute.",
            [
                Query(f"60 * sum(rate(redline_cases_filed_total[{RATE}]))", "cases filed"),
                Query(
                    f"60 * sum(rate(redline_measures_applied_total[{RATE}]))", "measures applied"
                ),
                Query(f"60 * sum(rate(redline_measures_lifted_total[{RATE}]))", "measures lifted"),
                Query(
                    f"60 * sum(rate(redline_accountability_referrals_total[{RATE}]))",
                    "accountability referrals",
                ),
            ],
            unit="cpm",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Responses pending and overdue",
            "What the departments owe: answers not yet due, and answers past the deadline.",
            [
                Query("sum(redline_responses_pending)", "pending"),
                Query("sum(redline_responses_overdue)", "overdue"),
            ],
        ),
        12,
        8,
    )
    g.add(_departments_table(departments), 24, 10)

    g.row("Kafka: throughput, lag, dead letters, outboxes")
    g.add(
        timeseries(
            "Events published by topic",
            "Events the relays published, acknowledged by the broker.",
            [Query(f"sum by (topic) (rate(redline_events_published_total[{RATE}]))", "{{topic}}")],
            unit="ops",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Events consumed by consumer",
            "Messages each consumer took its effect on (or refused).",
            [
                Query(
                    f"sum by (consumer) (rate(redline_events_consumed_total[{RATE}]))",
                    "{{consumer}}",
                )
            ],
            unit="ops",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Consumer lag",
            "Messages on the topic not yet committed by each consumer group "
            "(alert RedlineConsumerLagGrowing).",
            [
                Query(
                    "sum by (consumer, topic) (redline_consumer_lag_messages)",
                    "{{consumer}} · {{topic}}",
                )
            ],
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Handler latency p99",
            "Time to decode, verify and commit one batch, 99th percentile, per consumer.",
            [
                Query(
                    "histogram_quantile(0.99, sum by (consumer, le) "
                    f"(rate(redline_handler_duration_seconds_bucket[{RATE}])))",
                    "{{consumer}}",
                )
            ],
            unit="s",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Dead letters by consumer and reason",
            "Messages refused into the dead-letter topic (alert RedlineDeadLetters).",
            [
                Query(
                    f"sum by (consumer, reason) (increase(redline_dead_letters_total[{RATE}])) > 0",
                    "{{consumer}}: {{reason}}",
                )
            ],
            bars=True,
            stacked=True,
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Outbox backlog",
            "Events written to each outbox and not yet published.",
            [Query("sum by (outbox) (redline_outbox_backlog_events)", "{{outbox}}")],
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Oldest unsent outbox event",
            "Age of each outbox's oldest unpublished event; the line is the alert bound.",
            [Query("max by (outbox) (redline_outbox_oldest_unsent_age_seconds)", "{{outbox}}")],
            unit="s",
            threshold_line=OUTBOX_AGE_ALERT_SECONDS,
        ),
        8,
        8,
    )

    g.row("Blocks and accountability")
    g.add(
        bargauge(
            "Active blocks by measure",
            "Cases blocked now, per measure.",
            Query("sort_desc(sum by (measure) (redline_active_blocks))", "{{measure}}", True),
        ),
        8,
        10,
    )
    g.add(
        bargauge(
            "Accountability referrals by township",
            "Cases over the seed §四(五) threshold (5 mu permanent basic farmland or 10 mu "
            "cultivated land) in the time range, per township.",
            Query(
                "sort_desc(sum by (township) "
                f"(increase(redline_accountability_referrals_total[{RANGE}])))",
                "{{township}}",
                True,
            ),
            thresholds=RED_FROM_ONE,
        ),
        8,
        10,
    )
    g.add(
        bargauge(
            "Cases filed by township",
            "Cases filed in the time range, per township (territorial responsibility).",
            Query(
                f"sort_desc(sum by (township) (increase(redline_cases_filed_total[{RANGE}])))",
                "{{township}}",
                True,
            ),
        ),
        8,
        10,
    )

    g.row("Checks and processes")
    g.add(
        timeseries(
            "Checks by service and outcome",
            "Blocklist checks answered by the registry (central) and the subscribers.",
            [
                Query(
                    f"sum by (service, outcome) (rate(redline_check_requests_total[{RATE}]))",
                    "{{service}}: {{outcome}}",
                )
            ],
            unit="reqps",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Check latency p99",
            "Time to answer one check, 99th percentile.",
            [
                Query(
                    "histogram_quantile(0.99, sum by (service, le) "
                    f"(rate(redline_check_duration_seconds_bucket[{RATE}])))",
                    "{{service}}",
                )
            ],
            unit="s",
        ),
        12,
        8,
    )
    g.add(service_health("Processes", f'job="{JOB}"'), 24, 8)
    return dashboard(
        OVERVIEW_UID,
        "Redline · overview",
        "The whole joint-punishment loop. Generated by deploy/generate.py: do not edit.",
        ["overview"],
        g,
        links=_links(overview=False),
    )


def _departments_table(departments: str) -> Json:
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
    queries = [Query(expr, instant=True, table=True) for expr in columns.values()]
    table = panel(
        "table",
        "Departments",
        "Per department: measures applied and lifted in the time range, answers owed "
        "(pending) and late (overdue) now, consumer lag, dead letters. Click a department.",
        queries,
        options={"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        transformations=[
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": {"department": 0},
                    "renameByName": {
                        f"Value #{chr(ord('A') + i)}": name for i, name in enumerate(columns)
                    },
                },
            },
        ],
    )
    table["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byName", "options": "department"},
            "properties": [
                {
                    "id": "links",
                    "value": [
                        {
                            "title": "Department dashboard",
                            "url": "/d/redline-dept-${__value.raw}?${__url_time_range}",
                        }
                    ],
                }
            ],
        },
        {
            "matcher": {"id": "byName", "options": "overdue"},
            "properties": [
                {"id": "thresholds", "value": RED_FROM_ONE},
                {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            ],
        },
    ]
    return table


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


def department_dashboard(department: Department) -> Json:
    code = department.code
    process = department_process(department)
    dept = f'department="{code}"'
    consumer = f'consumer="{code}"'
    measures = _alternatives([m.code for m in department.measures])
    g = Grid()
    g.row(f"{department.name_zh} · {department.name}")
    for title, description, query, unit, thresholds in (
        (
            "Applied",
            "Measures applied in the time range.",
            Query(
                f"sum(increase(redline_measures_applied_total{{{dept}}}[{RANGE}]))", instant=True
            ),
            "short",
            None,
        ),
        (
            "Lifted",
            "Measures lifted in the time range.",
            Query(f"sum(increase(redline_measures_lifted_total{{{dept}}}[{RANGE}]))", instant=True),
            "short",
            None,
        ),
        (
            "Pending",
            "Answers owed, not yet due.",
            Query(f"sum(redline_responses_pending{{{dept}}})"),
            "short",
            None,
        ),
        (
            "Overdue",
            "Answers past the deadline (alert RedlineResponsesOverdue).",
            Query(f"sum(redline_responses_overdue{{{dept}}})"),
            "short",
            RED_FROM_ONE,
        ),
        (
            "Consumer lag",
            "Messages not yet committed by this department's consumer group.",
            Query(f"sum(redline_consumer_lag_messages{{{consumer}}})"),
            "short",
            None,
        ),
        (
            "Dead letters",
            "Messages this department refused in the time range.",
            Query(
                f"sum(increase(redline_dead_letters_total{{{consumer}}}[{RANGE}]))", instant=True
            ),
            "short",
            RED_FROM_ONE,
        ),
    ):
        g.add(stat(title, description, query, unit=unit, thresholds=thresholds), 4, 4)
    g.add(
        timeseries(
            "Measures applied and lifted",
            "Per minute.",
            [
                Query(
                    f"60 * sum(rate(redline_measures_applied_total{{{dept}}}[{RATE}]))", "applied"
                ),
                Query(f"60 * sum(rate(redline_measures_lifted_total{{{dept}}}[{RATE}]))", "lifted"),
            ],
            unit="cpm",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Responses pending and overdue",
            "Answers this department owes: not yet due, and past the deadline.",
            [
                Query(f"sum(redline_responses_pending{{{dept}}})", "pending"),
                Query(f"sum(redline_responses_overdue{{{dept}}})", "overdue"),
            ],
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Consumed and lag",
            "Messages consumed per second and left to consume, by topic.",
            [
                Query(
                    f"sum by (topic) (rate(redline_events_consumed_total{{{consumer}}}[{RATE}]))",
                    "consumed/s {{topic}}",
                ),
                Query(
                    f"sum by (topic) (redline_consumer_lag_messages{{{consumer}}})",
                    "lag {{topic}}",
                ),
            ],
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Batch latency",
            "Time to decode, verify and commit one batch.",
            [
                Query(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(redline_handler_duration_seconds_bucket{{{consumer}}}[{RATE}])))",
                    f"p{round(q * 100)}",
                )
                for q in (0.5, 0.99)
            ],
            unit="s",
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Dead letters by reason",
            "Messages refused into the dead-letter topic (alert RedlineDeadLetters).",
            [
                Query(
                    f"sum by (reason) (increase(redline_dead_letters_total{{{consumer}}}[{RATE}]))"
                    " > 0",
                    "{{reason}}",
                )
            ],
            bars=True,
            stacked=True,
        ),
        8,
        8,
    )
    outbox = f'outbox="{process.outbox}"'
    g.add(
        timeseries(
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
    g.add(
        bargauge(
            "Active blocks of its measures",
            "Cases blocked now under this department's measures (a measure shared by several "
            "departments counts them all).",
            Query(
                f'sum by (measure) (redline_active_blocks{{measure=~"{measures}"}})',
                "{{measure}}",
                True,
            ),
        ),
        12,
        8,
    )
    if department.kind != "government":
        g.add(
            timeseries(
                "Subscriber replicas",
                "Age of the replicas that enforce these measures at the counter; the line is "
                "the freshness bound (alert RedlineSubscriberReplicaStale).",
                [
                    Query(
                        "max by (subscriber, measure) "
                        f'(redline_subscriber_staleness_seconds{{measure=~"{measures}"}})',
                        "{{subscriber}} · {{measure}}",
                    )
                ],
                unit="s",
                threshold_line=STALENESS_BOUND_SECONDS,
            ),
            24,
            8,
        )
    g.add(service_health("Process", f'job="{JOB}", service="{process.name}"'), 6, 6)
    g.add(text("Measures (catalogue)", _measures_markdown(department)), 18, 6)
    return dashboard(
        department_uid(code),
        f"Redline · {department.name_zh} {department.name}",
        f"Department {code}: its measures, answers, consumer and outbox. "
        "Generated by deploy/generate.py from the catalogue: do not edit.",
        [DEPARTMENT_TAG, department.kind],
        g,
        links=_links(),
    )


def subscribers() -> Json:
    subscriber = 'subscriber=~"$subscriber"'
    process = 'process=~"subscriber-$subscriber"'
    checks = 'service="subscriber"'
    blocklists = _alternatives(BLOCKLIST_MEASURES)
    g = Grid()
    g.row("Replicas")
    g.add(
        stat(
            "Worst staleness",
            f"Age of the oldest replica; above {STALENESS_BOUND_SECONDS:g} s it answers 'stale'.",
            Query(f"max(redline_subscriber_staleness_seconds{{{subscriber}}})"),
            unit="s",
            thresholds=_thresholds(("green", None), ("red", STALENESS_BOUND_SECONDS)),
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Checks",
            "Checks answered per second by the selected subscribers.",
            Query(f"sum(rate(redline_check_requests_total{{{checks}, {process}}}[{RATE}]))"),
            unit="reqps",
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Stale answers",
            "Checks answered 'stale' per second: the counter could not be told clear or blocked.",
            Query(
                f'sum(rate(redline_check_requests_total{{{checks}, {process}, outcome="stale"}}'
                f"[{RATE}]))"
            ),
            unit="reqps",
            thresholds=_thresholds(("green", None), ("red", 0.001)),
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Check latency p99",
            "Time to answer one check at the counter, 99th percentile.",
            Query(
                "histogram_quantile(0.99, sum by (le) "
                f"(rate(redline_check_duration_seconds_bucket{{{checks}, {process}}}[{RATE}])))"
            ),
            unit="s",
        ),
        6,
        4,
    )
    g.add(
        timeseries(
            "Replica staleness",
            "Seconds since each replica's least recently vouched partition; the line is the "
            "freshness bound (alert RedlineSubscriberReplicaStale).",
            [
                Query(
                    "max by (subscriber, measure) "
                    f"(redline_subscriber_staleness_seconds{{{subscriber}}})",
                    "{{subscriber}} · {{measure}}",
                )
            ],
            unit="s",
            threshold_line=STALENESS_BOUND_SECONDS,
        ),
        24,
        8,
    )
    g.row("Checks at the counter")
    g.add(
        timeseries(
            "Check rate by outcome",
            "blocked, clear, stale (fail closed) and refused (bad input), per second.",
            [
                Query(
                    f"sum by (outcome) (rate(redline_check_requests_total{{{checks}, {process}}}"
                    f"[{RATE}]))",
                    "{{outcome}}",
                )
            ],
            unit="reqps",
            stacked=True,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Check rate by subscriber",
            "Checks answered per second, per subscriber process.",
            [
                Query(
                    f"sum by (process) (rate(redline_check_requests_total{{{checks}, {process}}}"
                    f"[{RATE}]))",
                    "{{process}}",
                )
            ],
            unit="reqps",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Check latency",
            "p50 and p99 at the subscribers, p99 at the central registry check for comparison.",
            [
                *(
                    Query(
                        f"histogram_quantile({q}, sum by (le) "
                        f"(rate(redline_check_duration_seconds_bucket{{{checks}, {process}}}"
                        f"[{RATE}])))",
                        f"subscribers p{round(q * 100)}",
                    )
                    for q in (0.5, 0.99)
                ),
                Query(
                    "histogram_quantile(0.99, sum by (le) "
                    f'(rate(redline_check_duration_seconds_bucket{{service="registry"}}[{RATE}])))',
                    "registry p99",
                ),
            ],
            unit="s",
        ),
        12,
        8,
    )
    g.add(
        bargauge(
            "Outcomes in the time range",
            "Checks answered in the time range, by outcome.",
            Query(
                "sort_desc(sum by (outcome) "
                f"(increase(redline_check_requests_total{{{checks}, {process}}}[{RANGE}])))",
                "{{outcome}}",
                True,
            ),
        ),
        12,
        8,
    )
    g.row("Blocklists and processes")
    g.add(
        bargauge(
            "Active blocks per blocklist",
            "Cases blocked now under each measure served as a blocklist.",
            Query(
                f'sort_desc(sum by (measure) (redline_active_blocks{{measure=~"{blocklists}"}}))',
                "{{measure}}",
                True,
            ),
        ),
        12,
        8,
    )
    g.add(service_health("Subscriber processes", f'job="{JOB}", {process}'), 12, 8)
    variable = {
        "name": "subscriber",
        "label": "Subscriber",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {
            "query": "label_values(redline_subscriber_staleness_seconds, subscriber)",
            "refId": "subscriber",
        },
        "definition": "label_values(redline_subscriber_staleness_seconds, subscriber)",
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
    }
    return dashboard(
        SUBSCRIBERS_UID,
        "Redline · subscribers",
        "Utilities and banks checking customers against local blocklist replicas. "
        "Generated by deploy/generate.py: do not edit.",
        ["subscribers"],
        g,
        variables=[variable],
        links=_links(subscribers=False),
    )


def all_dashboards(catalogue: Catalogue) -> dict[str, Json]:
    """Every dashboard, by path relative to deploy/grafana/dashboards."""
    dashboards = {
        "core/redline-overview.json": overview(catalogue),
        "core/redline-subscribers.json": subscribers(),
    }
    for department in catalogue.departments:
        dashboards[f"departments/redline-department-{department.code}.json"] = department_dashboard(
            department
        )
    return dashboards


def panel_queries(dashboard_json: Json) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [
        target["expr"]
        for item in dashboard_json["panels"]
        for target in item.get("targets", [])
        if "expr" in target
    ]
