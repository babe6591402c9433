"""The system host: the bus's own services in one process, so that `make run` at rest is a
handful of processes rather than one per service (#19), as the department host does for
the departments' enforcers.

`python -m services.entrypoints.system_host [names...]` (no names: relay, feedback,
blocklist, monitor and audit-anchor). Each hosted service keeps everything that is its
own: its database role (REDLINE_SYSTEM_DATABASE_URLS, a JSON object name -> DATABASE_URL;
only without that map does DATABASE_URL serve them all), its pools, Kafka clients and
consumer group, its metrics labels, and the very `run_*(settings, stop)` coroutine its
standalone process runs (`python -m services.entrypoints.relay` and so on still work, for
a deployment that runs them apart). Each runs as its own task; one that fails is started
again after a back-off while the others go on. SIGTERM or SIGINT stops them all.

Shared: the process, its event loop, its metrics port (one route per service) and its
Kafka login. Where the broker holds each service to a user of its own, run them apart
(REDLINE_SYSTEM=standalone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from http.server import ThreadingHTTPServer

from services.adapters.blocklist_store import SCHEMA as BLOCKLIST_OUTBOX
from services.adapters.feedback_store import SCHEMA as FEEDBACK_OUTBOX
from services.blocklist.handlers import CONSUMER as BLOCKLIST_CONSUMER
from services.config import Settings, load_settings
from services.entrypoints.audit_anchor import run_anchor
from services.entrypoints.blocklist import run_builder
from services.entrypoints.feedback import run_tracker
from services.entrypoints.monitor import run_monitor
from services.entrypoints.relay import run_relay
from services.errors import ConfigError
from services.feedback.handlers import CONSUMER as FEEDBACK_CONSUMER
from services.metrics import BusCollector, start_metrics_server
from services.metrics_routes import MetricsRoute, serve_routed_metrics
from services.runtime.service import Hosted, configure_logging

log = logging.getLogger("redline.system_host")

DATABASE_URLS = "REDLINE_SYSTEM_DATABASE_URLS"
SYSTEM_HOST = "system-host"  # the process's name, and its route for the series of no service
# Each service by the name `make run` has always given it, with the database role it logs
# in as (services/adapters/db_roles.py).
ROLES: dict[str, str] = {
    "relay": "redline_relay",
    "feedback": "redline_feedback",
    "blocklist": "redline_blocklist",
    "monitor": "redline_monitor",
    "audit-anchor": "redline_audit_anchor",
}
REGISTRY_OUTBOX = "registry"  # the registry relay's `outbox` label (OutboxRelay.name)
STOP_GRACE_SECONDS = 10.0

Run = Callable[[Settings, asyncio.Event], Awaitable[None]]


def runners(collector: BusCollector) -> dict[str, Run]:
    """Each service's standalone coroutine; the monitor fills `collector`."""
    return {
        "relay": run_relay,
        "feedback": run_tracker,
        "blocklist": run_builder,
        "monitor": lambda settings, stop: run_monitor(settings, stop, collector),
        "audit-anchor": run_anchor,
    }


def service_names(args: Sequence[str]) -> list[str]:
    """The services named on the command line, every one when none is."""
    for name in args:
        if name not in ROLES:
            known = ", ".join(ROLES)
            raise ConfigError(f"system host: no service called {name!r} (one of {known})")
    if len(set(args)) != len(args):
        raise ConfigError("system host: a service is named twice")
    return list(args) or list(ROLES)


def system_urls(settings: Settings, names: Sequence[str]) -> dict[str, str]:
    """Each hosted service's DATABASE_URL (its own role), from REDLINE_SYSTEM_DATABASE_URLS.
    Only without that map (one server, or a test) does DATABASE_URL serve them all; with it,
    a service missing from it is refused by name rather than given another's role."""
    given = settings.system_database_urls
    for name in given:
        if name not in ROLES:
            raise ConfigError(f"{DATABASE_URLS}: no service called {name!r}")
    urls = {}
    for name in names:
        url = given.get(name) if given else settings.database_url
        if not url:
            raise ConfigError(f"{DATABASE_URLS}: no database URL for {name}")
        urls[name] = url
    return urls


class HostedService(Hosted):
    """One service in the host: its standalone coroutine."""

    def __init__(self, name: str, settings: Settings, run: Run) -> None:
        super().__init__(name)
        self.settings = settings  # with the service's own DATABASE_URL
        self._run = run

    async def body(self, stop: asyncio.Event) -> None:
        self.running = True
        await self._run(self.settings, stop)


def hosted_services(
    settings: Settings, urls: Mapping[str, str], collector: BusCollector
) -> dict[str, HostedService]:
    kafka, _ = settings.require()
    run = runners(collector)
    return {
        name: HostedService(name, settings.with_endpoints(kafka, url), run[name])
        for name, url in urls.items()
    }


def owner(labels: Mapping[str, str]) -> str | None:
    """The hosted service a series belongs to; None: the host's own (process, Python)."""
    outbox, consumer = labels.get("outbox"), labels.get("consumer")
    if outbox == REGISTRY_OUTBOX:
        return "relay"
    if outbox == FEEDBACK_OUTBOX or consumer == FEEDBACK_CONSUMER:
        return "feedback"
    if outbox == BLOCKLIST_OUTBOX or consumer == BLOCKLIST_CONSUMER:
        return "blocklist"
    return None  # the audit anchor counts nothing of its own


def serve_metrics(
    host: str, port: int, services: Mapping[str, HostedService], monitor: BusCollector
) -> ThreadingHTTPServer:
    """/metrics: everything; /metrics/<name>: one service's series, 503 while it is not
    running (so Prometheus' `up` of its target says so); /metrics/system-host: the series of
    none. The supervisor scrapes one target per service, named as each always was. The
    monitor describes the whole bus in the services' own label names (outbox="feedback"),
    so its series come from its collector alone, never told apart by their labels."""

    def route(service: HostedService) -> MetricsRoute:
        if service.name == "monitor":
            return MetricsRoute(lambda _: True, lambda: service.running, source=monitor)
        return MetricsRoute(lambda labels: owner(labels) == service.name, lambda: service.running)

    routes = {SYSTEM_HOST: MetricsRoute(lambda labels: owner(labels) is None)}
    routes |= {name: route(service) for name, service in services.items()}
    return serve_routed_metrics(host, port, routes)


async def host(services: Mapping[str, HostedService], stop: asyncio.Event) -> None:
    """Run every service of `services` until `stop`; the caller has set up metrics."""
    tasks = [
        asyncio.create_task(service.run(stop), name=f"system-{name}")
        for name, service in services.items()
    ]
    log.warning("system host: running %s", ", ".join(services))
    try:
        await stop.wait()
        await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)  # each ends what it does
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    names = service_names(sys.argv[1:] if argv is None else argv)
    settings = load_settings()
    configure_logging()  # at INFO, as each service's own process logs
    urls = system_urls(settings, names)
    start_metrics_server(replace(settings, metrics_port=None))  # counting on or off only
    collector = BusCollector()
    services = hosted_services(settings, urls, collector)
    server = None
    if settings.metrics_port is not None:
        server = serve_metrics(settings.metrics_host, settings.metrics_port, services, collector)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await host(services, stop)

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    finally:
        if server is not None:
            server.shutdown()


if __name__ == "__main__":
    main()
