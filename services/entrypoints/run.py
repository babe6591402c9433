"""`make run`: bring up the whole system on embedded defaults, or on the named servers.

Starts the embedded broker and Postgres unless KAFKA_BOOTSTRAP and DATABASE_URL are set,
creates the topics, applies the migrations, starts every service as a child process,
prints one ready line, and on SIGINT/SIGTERM stops every child it started, by pid.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from services.adapters.kafka import ensure_topics
from services.adapters.migrate import migrate
from services.config import Settings, load_settings
from services.departments.catalogue import load_catalogue
from services.errors import RedlineError, StartupError
from services.runtime.devkeys import ensure_dev_keys
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.processes import (
    free_port,
    port_is_free,
    spawn,
    stop_processes,
    tcp_accepts,
    wait_until,
)


@dataclass(frozen=True)
class ChildService:
    """One long-running service process and the address it serves, if any."""

    name: str
    module: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    port: int | None = None
    metrics_port: int | None = None  # where Prometheus scrapes /metrics

    @property
    def address(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def metrics(self) -> str | None:
        return f"http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else None


def _port(preferred: int) -> int:
    return preferred if port_is_free(preferred) else free_port()


def _observed(name: str, module: str, *args: str) -> ChildService:
    """A service that serves its metrics on a port of its own."""
    port = free_port()
    return ChildService(
        name, module, args, env=(("REDLINE_METRICS_PORT", str(port)),), metrics_port=port
    )


def child_services(settings: Settings) -> list[ChildService]:
    """Every service `make run` starts, in start order (stopped in reverse)."""
    api_port = _port(settings.api_port)
    services = [
        _observed("relay", "services.entrypoints.relay"),
        _observed("feedback", "services.entrypoints.feedback"),
        _observed("blocklist", "services.entrypoints.blocklist"),
        _observed("monitor", "services.entrypoints.monitor"),
        *(
            _observed(f"department-{code}", "services.entrypoints.department", code)
            for code in load_catalogue().codes
        ),
        ChildService(
            "registry-api",
            "services.entrypoints.api",
            env=(("REDLINE_API_PORT", str(api_port)),),
            port=api_port,
            metrics_port=api_port,
        ),
    ]
    if settings.demo:
        services.append(
            ChildService("demo", "services.entrypoints.cli", args=("demo", "--interval", "2"))
        )
    return services


def write_scrape_targets(home: Path, services: list[ChildService]) -> Path:
    """Prometheus file_sd targets: every service's /metrics, labelled with its name."""
    targets = [
        {"targets": [f"127.0.0.1:{service.metrics_port}"], "labels": {"service": service.name}}
        for service in services
        if service.metrics_port
    ]
    path = home / "prometheus" / "targets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(targets, indent=2) + "\n")
    return path


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.children: list[tuple[ChildService, subprocess.Popen[bytes]]] = []
        self.stopping = threading.Event()

    def start(self) -> Settings:
        settings = self.settings
        settings.home.mkdir(parents=True, exist_ok=True)
        if settings.embedded:
            self.broker = EmbeddedBroker(settings.home / "broker")
            self.broker.start()
            self.postgres = EmbeddedPostgres(settings.home / "postgres")
            self.postgres.start()
            settings = settings.with_endpoints(self.broker.bootstrap, self.postgres.url)
        kafka, database = settings.require()
        asyncio.run(ensure_topics(kafka, replication_factor=settings.kafka_replication_factor))
        asyncio.run(migrate(database))
        trust_store = ensure_dev_keys(settings.home)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP": kafka,
            "DATABASE_URL": database,
            "REDLINE_HOME": str(settings.home),
            "REDLINE_TRUST_STORE": str(trust_store),
            "REDLINE_SUBJECT_KEY": str(settings.subject_key),
        }
        for service in child_services(settings):
            proc = spawn(
                [sys.executable, "-m", service.module, *service.args],
                log_path=settings.home / "logs" / f"{service.name}.log",
                env={**env, **dict(service.env)},
            )
            self.children.append((service, proc))
        for service, proc in self.children:
            if service.port is not None:
                self._wait_listening(service, proc, service.port)
        self._write_endpoints(settings)
        return settings

    def _wait_listening(
        self, service: ChildService, proc: subprocess.Popen[bytes], port: int
    ) -> None:
        def listening() -> bool:
            if proc.poll() is not None:
                raise StartupError(
                    f"{service.name} exited with {proc.returncode}; "
                    f"see {self.settings.home / 'logs' / (service.name + '.log')}"
                )
            return tcp_accepts("127.0.0.1", port)

        wait_until(listening, timeout=60, what=service.name)

    def _write_endpoints(self, settings: Settings) -> None:
        endpoints = {
            "kafka_bootstrap": settings.kafka_bootstrap,
            "database_url": settings.database_url,
            "pids": {
                **({"broker": self.broker.pid} if self.broker else {}),
                **({"postgres": self.postgres.pid} if self.postgres else {}),
                **{service.name: proc.pid for service, proc in self.children},
            },
            "services": {
                service.name: service.address for service, _ in self.children if service.address
            },
            "metrics": {
                service.name: service.metrics for service, _ in self.children if service.metrics
            },
        }
        settings.endpoints_file.write_text(json.dumps(endpoints, indent=2) + "\n")
        write_scrape_targets(settings.home, [service for service, _ in self.children])

    def watch(self) -> int:
        """Block until asked to stop (0) or until a child dies on its own (1)."""
        while not self.stopping.wait(0.5):
            for service, proc in self.children:
                if proc.poll() is not None:
                    print(
                        f"redline: {service.name} exited with {proc.returncode}; "
                        f"see {self.settings.home / 'logs' / (service.name + '.log')}",
                        file=sys.stderr,
                    )
                    return 1
        return 0

    def stop(self) -> None:
        # Services first (all at once), then the servers they use.
        stop_processes([proc for _, proc in reversed(self.children)])
        self.children.clear()
        if self.postgres:
            self.postgres.stop()
        if self.broker:
            self.broker.stop()
        self.settings.endpoints_file.unlink(missing_ok=True)


def main() -> int:
    began = time.monotonic()
    supervisor = Supervisor(load_settings())

    def request_stop(signum: int, frame: FrameType | None) -> None:
        del frame
        print(f"redline: {signal.Signals(signum).name} received, stopping", flush=True)
        supervisor.stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        settings = supervisor.start()
        services = " ".join(
            f"{service.name}={service.address}"
            for service, _ in supervisor.children
            if service.address
        )
        mode = "embedded" if supervisor.broker else "external"
        print(
            f"redline ready in {time.monotonic() - began:.1f}s ({mode}): "
            f"kafka={settings.kafka_bootstrap} database={settings.database_url}"
            + (f" {services}" if services else "")
            + f" home={Path(settings.home)}",
            flush=True,
        )
        for service, _ in supervisor.children:
            if service.metrics:
                print(f"redline: metrics of {service.name} at {service.metrics}", flush=True)
        code = supervisor.watch()
    except RedlineError as exc:
        print(f"redline: {exc}", file=sys.stderr)
        code = 1
    finally:
        supervisor.stop()
    print("redline: stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
