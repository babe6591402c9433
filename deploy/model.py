"""What runs where: every Redline process as `make run` names it, and the conventions
(ports, paths, thresholds) that Compose, Kubernetes, Prometheus and Grafana share.

The generator (python -m deploy.generate) derives every file that lists departments,
processes or topics from this module, the catalogue and events/topics.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connectors.subscriber.freshness import DEFAULT_BOUND_SECONDS
from events.authorities import (
    BLOCKLIST_BUILDER,
    FEEDBACK_TRACKER,
    NATURAL_RESOURCES,
    demo_subscriber,
)
from events.catalogue import Catalogue, Department
from services.config import Settings
from services.departments.schema import department_schema

JOB = "redline"
"""The Prometheus job that scrapes every Redline process (alerts select on it)."""

METRICS_PORT = 9100
"""REDLINE_METRICS_PORT inside a container: each has its own network, so one number."""

API_PORT = Settings(kafka_bootstrap=None, database_url=None, home=Path()).api_port
"""The registry API's port (Settings default); it serves /metrics on the same port."""

CONNECTOR_PORT = 8470
"""The subscriber connector's check API port (redline-connector run --port default)."""

SUBSCRIBER_METRICS_PORT = CONNECTOR_PORT
"""Where Prometheus scrapes a subscriber: /metrics on its check API port (assumed, like
the registry API; change here if the connector serves metrics elsewhere)."""

HOME = "/var/lib/redline"
"""REDLINE_HOME inside the containers (the image creates it, owned by the service user)."""

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a container listens on its own network namespace

OUTBOX_AGE_ALERT_SECONDS = 300
"""An outbox whose oldest unsent event is older than this is stuck (alert and dashboards)."""

STALENESS_BOUND_SECONDS = DEFAULT_BOUND_SECONDS
"""A replica older than the connector's default freshness bound answers 'stale'."""

DATASOURCE_UID = "redline-prometheus"
"""The Grafana datasource every dashboard panel names (provisioning/datasources)."""

K8S_NAMESPACE = "redline"
K8S_KAFKA_REPLICAS = 3
"""Replicas of every topic on the production cluster (KafkaTopic and
REDLINE_KAFKA_REPLICATION agree)."""


@dataclass(frozen=True)
class Process:
    """One long-running Redline process and what it needs."""

    name: str
    """Its `service` label, exactly as `make run` names it (targets.json)."""
    component: str
    """relay | feedback | blocklist | monitor | department | api | subscriber"""
    command: tuple[str, ...]
    signs_as: str | None = None
    """The authority whose private key signs what it publishes (None: publishes nothing
    of its own, or only relays events already signed)."""
    subject_key: bool = False
    """Whether it hashes subject IDs (blocklists), so needs REDLINE_SUBJECT_KEY."""
    department: str | None = None
    measures: tuple[str, ...] = ()
    """A subscriber's blocklist measures."""

    @property
    def port(self) -> int:
        """The one port it listens on, and where its /metrics is."""
        if self.component == "api":
            return API_PORT
        if self.component == "subscriber":
            return SUBSCRIBER_METRICS_PORT
        return METRICS_PORT

    @property
    def dns_name(self) -> str:
        """A DNS-1123 name for Kubernetes objects."""
        return f"redline-{self.name}".replace("_", "-")

    @property
    def outbox(self) -> str | None:
        """The `outbox` label of the relay it runs, if any."""
        if self.component == "department" and self.department:
            return department_schema(self.department)
        return None


def _module(name: str, *args: str) -> tuple[str, ...]:
    return ("python", "-m", f"services.entrypoints.{name}", *args)


def core_processes() -> list[Process]:
    return [
        Process("relay", "relay", _module("relay")),
        Process("feedback", "feedback", _module("feedback"), signs_as=FEEDBACK_TRACKER.code),
        Process(
            "blocklist",
            "blocklist",
            _module("blocklist"),
            signs_as=BLOCKLIST_BUILDER.code,
            subject_key=True,
        ),
        Process("monitor", "monitor", _module("monitor")),
    ]


def department_process(department: Department) -> Process:
    return Process(
        f"department-{department.code}",
        "department",
        _module("department", department.code),
        signs_as=department.code,
        department=department.code,
    )


def api_process() -> Process:
    return Process(
        "registry-api",
        "api",
        _module("api"),
        signs_as=NATURAL_RESOURCES.code,
        subject_key=True,
    )


def subscriber_processes(catalogue: Catalogue) -> list[Process]:
    """One demo subscriber per utility and bank, signing as the development trust store's
    `<department>_demo_subscriber`."""
    processes = []
    for department in catalogue.subscriber_departments:
        name = demo_subscriber(department.code).code
        processes.append(
            Process(
                f"subscriber-{name}",
                "subscriber",
                ("redline-connector", "run"),
                signs_as=name,
                subject_key=True,
                department=department.code,
                measures=tuple(m.code for m in department.measures),
            )
        )
    return processes


def server_processes(catalogue: Catalogue) -> list[Process]:
    """The core services, in `make run` start order (subscribers run at the companies)."""
    return [
        *core_processes(),
        *(department_process(d) for d in catalogue.departments),
        api_process(),
    ]
