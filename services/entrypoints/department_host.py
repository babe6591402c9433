"""A department host: many departments' enforcers in one process, as a municipal data
centre runs them for bureaus without their own IT.

`redline department host [codes...]` (or `python -m services.entrypoints.department_host`;
no codes: every department in the catalogue). Each hosted department keeps everything that
is its own: its consumer group `redline-department-<code>` (the standalone worker's, so a
department moves between hosted and standalone without losing its place), its schema and
database role (REDLINE_DEPARTMENT_DATABASE_URLS, a JSON object code -> DATABASE_URL; a
code it does not name uses DATABASE_URL), its signing key, outbox and relay, and its
metrics labels. Each runs as its own task, committing its own group's offsets only after
its effects are stored; one that fails (its handler raising, its consumer unable to start)
is started again from its committed offsets after a back-off, while the others go on; one
whose schema cannot be written retries its batch and catches up once it can.

Shared, because it is safe to share: the process, its event loop, the trust store, one
fetch of the violation stream for every department level with it (`SharedFeed`; one
behind reads alone until level), and the decoding and signature check of each event
(`events.codec.DecodedOnce`, keyed by its exact bytes). Never a key, a pool or a table.
The whole host ends with exit 75 when the broker turns out to be another cluster, as the
standalone worker does: its supervisor starts it afresh on the new logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from http.server import ThreadingHTTPServer

from events.backoff import Backoff
from events.catalogue import load_catalogue
from events.codec import DecodedOnce, EventDecoder
from events.signing import TrustStore
from events.topics import VIOLATIONS
from services.adapters.department_store import department_schema
from services.adapters.publisher import ClusterQuestion, KafkaPublisher
from services.adapters.same_broker import SameBroker
from services.adapters.shared_feed import FedMember, SharedFeed
from services.config import Settings, load_settings
from services.consumer.group import consume
from services.entrypoints.department_runtime import DepartmentRuntime, first_cluster
from services.errors import BrokerError, ConfigError
from services.metrics import count_measures, prepare_consumer, start_metrics_server
from services.metrics_routes import MetricsRoute, serve_routed_metrics
from services.runtime.service import RESTART_BACKOFF, Hosted, configure_logging, wait_set

log = logging.getLogger("redline.department_host")

DATABASE_URLS = "REDLINE_DEPARTMENT_DATABASE_URLS"
BROKER_CHECK_SECONDS = 1.0  # how soon a broker that came back empty ends the host
STOP_GRACE_SECONDS = 10.0
DECODED_CACHE_SIZE = 4096  # events; each department reads the same stream within seconds


def department_urls(settings: Settings, codes: Sequence[str]) -> dict[str, str]:
    """Each hosted department's DATABASE_URL (its own role), from
    REDLINE_DEPARTMENT_DATABASE_URLS. Only without that map (one department's own server,
    or a test) does DATABASE_URL serve them all; with it, a department missing from it is
    refused by name rather than given another's role, as is an unknown code."""
    catalogue = load_catalogue()
    given = settings.department_database_urls
    for code in given:
        catalogue.department(code)  # an unknown code is named here
    urls = {}
    for code in codes:
        url = given.get(code) if given else settings.database_url
        if not url:
            raise ConfigError(f"{DATABASE_URLS}: no database URL for department {code}")
        urls[code] = url
    return urls


class HostedDepartment(Hosted):
    """One department in the host: its consumer, started again from its committed offsets
    when it fails."""

    def __init__(
        self,
        code: str,
        settings: Settings,
        decode_event: EventDecoder,
        same_broker: SameBroker,
        feed: SharedFeed,
        *,
        question: ClusterQuestion,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.settings = settings  # with the department's own DATABASE_URL
        self.decode_event = decode_event
        self.same_broker = same_broker
        self.feed = feed
        self.question = question

    async def body(self, stop: asyncio.Event) -> None:
        runtime = DepartmentRuntime(
            self.code, self.settings, decode_event=self.decode_event, question=self.question
        )
        member = FedMember(
            self.settings,
            self.feed,
            name=self.code,
            group=f"redline-department-{self.code}",
            before_commit=self.same_broker.check,  # never old offsets into a new cluster
        )
        try:
            await runtime.migrate()  # its tables exist before it consumes anything
            enforcing = await runtime.consumer()
            await member.start()
            self.running = True
            try:
                await consume(stop, member, enforcing, runtime.relay(stop))
            finally:
                self.running = False
        finally:
            await runtime.close()


def _belongs(labels: Mapping[str, str], code: str) -> bool:
    return (
        labels.get("department") == code
        or labels.get("consumer") == code
        or labels.get("outbox") == department_schema(code)
    )


def serve_metrics(
    host: str, port: int, departments: Mapping[str, HostedDepartment]
) -> ThreadingHTTPServer:
    """/metrics: everything; /metrics/<code>: one department's series, 503 while it is not
    consuming (so Prometheus' `up` of `department-<code>` says so); /metrics/host: the
    series of no department (the process's own). The supervisor scrapes one target per
    department, so each series is scraped once and keeps its department's labels."""
    codes = tuple(departments)

    def host_only(labels: Mapping[str, str]) -> bool:
        return not any(_belongs(labels, code) for code in codes)

    def route(department: HostedDepartment) -> MetricsRoute:
        return MetricsRoute(
            lambda labels: _belongs(labels, department.code), lambda: department.running
        )

    routes = {"host": MetricsRoute(host_only)}
    routes |= {code: route(department) for code, department in departments.items()}
    return serve_routed_metrics(host, port, routes)


async def _feeding(feed: SharedFeed, stop: asyncio.Event) -> None:
    """The shared feed, started again after a broker error (its departments read alone
    meanwhile, each from its own offsets)."""
    backoff = Backoff(*RESTART_BACKOFF)
    while not stop.is_set():
        try:
            await feed.start()
            backoff.reset()
            await feed.run(stop)
        except BrokerError as exc:
            delay = backoff.next()
            log.warning("shared feed: %s; starting it again in %.0f s", exc, delay)
            await wait_set(stop, delay)


async def host(settings: Settings, urls: Mapping[str, str], stop: asyncio.Event) -> None:
    """Run every department of `urls` until `stop`; the caller has set up metrics."""
    kafka, _ = settings.require()
    decode_event = DecodedOnce(TrustStore.load(settings.trust_store), size=DECODED_CACHE_SIZE)
    first = await first_cluster(settings, "department host")  # before anything is read
    # Asks the cluster id only; its question is every department's relay's too: the
    # departments end a batch together, and their relays and commits ask together.
    watch = KafkaPublisher(kafka, auth=settings.kafka_auth)
    same_broker = SameBroker(first, watch.cluster_id, "department host")
    feed = SharedFeed(settings, VIOLATIONS.name)
    departments = {
        code: HostedDepartment(
            code,
            settings.with_endpoints(kafka, url),
            decode_event,
            same_broker,
            feed,
            question=watch.question,
        )
        for code, url in urls.items()
    }
    server = None
    if settings.metrics_port is not None:
        server = serve_metrics(settings.metrics_host, settings.metrics_port, departments)
    tasks = [
        asyncio.create_task(_feeding(feed, stop), name="shared-feed"),
        *(
            asyncio.create_task(department.run(stop), name=f"department-{code}")
            for code, department in departments.items()
        ),
    ]
    log.warning("department host: running %s", ", ".join(departments))
    try:
        while not await wait_set(stop, BROKER_CHECK_SECONDS):
            await same_broker.check()  # another cluster: the process ends here (exit 75)
        await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)  # each ends its batch
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await watch.close()
        if server is not None:
            server.shutdown()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    catalogue = load_catalogue()
    codes = [catalogue.department(code).code for code in args] or list(catalogue.codes)
    if len(set(codes)) != len(codes):
        raise SystemExit("department host: a department is named twice")
    settings = load_settings()
    configure_logging(settings.log_level)
    urls = department_urls(settings, codes)
    start_metrics_server(replace(settings, metrics_port=None))  # counting on or off only
    for code in codes:
        prepare_consumer(code, [VIOLATIONS.name])
        count_measures(code, 0, 0)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await host(settings, urls, stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
