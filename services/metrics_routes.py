"""One metrics port for a process that hosts several services or departments: each is
scraped as a target of its own (`/metrics/<name>`), seeing only its own series, so every
series is scraped once and keeps its service's labels."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

Labels = Mapping[str, str]


def _always() -> bool:
    return True


def _all(labels: Labels) -> bool:
    del labels
    return True


@dataclass(frozen=True)
class MetricsRoute:
    """The series one hosted service owns, and whether it runs now: a route that is down
    answers 503, so Prometheus' `up` of its target says so."""

    keep: Callable[[Labels], bool]
    up: Callable[[], bool] = _always
    source: Collector = REGISTRY  # a service that reads the bus for others has its own


class _Filtered(Collector):
    """`source`'s metrics, only the samples `keep` selects."""

    def __init__(self, source: Collector, keep: Callable[[Labels], bool]) -> None:
        self._source = source
        self._keep = keep

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if self._keep(s.labels)]
            if kept.samples:
                yield kept


def serve_routed_metrics(
    host: str, port: int, routes: Mapping[str, MetricsRoute]
) -> ThreadingHTTPServer:
    """/metrics: everything; /metrics/<name>: the series of route `name`; else 404."""
    everything = CollectorRegistry(auto_describe=False)
    sources: dict[int, Collector] = {id(REGISTRY): REGISTRY}
    sources |= {id(route.source): route.source for route in routes.values()}
    for source in sources.values():
        everything.register(_Filtered(source, _all))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server hook
            path = self.path.split("?", 1)[0].rstrip("/")
            status, registry = 200, CollectorRegistry(auto_describe=False)
            route = routes.get(path.removeprefix("/metrics/"))
            if path == "/metrics":
                registry = everything
            elif route is not None:
                registry.register(_Filtered(route.source, route.keep))
                status = 200 if route.up() else 503
            else:
                self.send_error(404)
                return
            body = generate_latest(registry)
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # one line per scrape is noise

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
