"""`make run`: bring up the whole system on embedded defaults, or on the named servers.

Starts the embedded broker and Postgres unless KAFKA_BOOTSTRAP and DATABASE_URL are set,
creates the topics, applies the migrations, starts every service as a child process,
prints one ready line, and on SIGINT/SIGTERM stops every child it started, by pid.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from connectors.subscriber.access import ensure_dev_tokens
from events.authorities import demo_subscriber
from events.backoff import Backoff
from events.catalogue import load_catalogue
from events.logmask import mask_logging, redact_passwords
from events.topics import ALL_TOPICS
from services.adapters.audit_anchor import AUDIT_CHECKPOINTS
from services.adapters.db_roles import department_role, prepare_database, role_passwords
from services.adapters.kafka import ensure_topics
from services.config import REPO_ROOT, Settings, load_settings
from services.entrypoints.children import ChildService, observed, system_services
from services.entrypoints.department_host import DATABASE_URLS as DEPARTMENT_DATABASE_URLS
from services.entrypoints.system_host import DATABASE_URLS as SYSTEM_DATABASE_URLS
from services.errors import ConfigError, RedlineError, StartupError
from services.runtime.devkeys import ensure_dev_keys, key_id
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.processes import (
    free_port,
    port_is_free,
    spawn,
    stop_processes,
    tcp_accepts,
    wait_until,
)

PROMETHEUS_CONFIG = REPO_ROOT / "deploy" / "prometheus"


def _port(preferred: int) -> int:
    return preferred if port_is_free(preferred) else free_port()


def demo_subscribers(settings: Settings) -> list[ChildService]:
    """One subscriber daemon per utility and bank, as a company would run it: its own
    replica file, the trust store, the subject key and its own signing key. Their check
    APIs take the development bearer token in home/subscribers/api.token."""
    api_tokens = ensure_dev_tokens(settings.home / "subscribers")
    subscribers = []
    for measure, department in load_catalogue().blocklist_measures().items():
        authority = demo_subscriber(department.code)
        port = free_port()
        subscribers.append(
            ChildService(
                f"subscriber-{authority.code}",
                "connectors.subscriber.cli",
                (
                    "run",
                    f"--name={authority.code}",
                    f"--measures={measure}",
                    f"--replica={settings.home / 'subscribers' / f'{authority.code}.sqlite'}",
                    f"--trust-store={settings.trust_store}",
                    f"--subject-key={settings.subject_key}",
                    f"--signing-key={settings.home / 'keys' / f'{key_id(authority)}.pem'}",
                    f"--signing-key-id={key_id(authority)}",
                    f"--api-tokens={api_tokens}",
                    f"--port={port}",
                ),
                port=port,
                metrics_port=port,
            )
        )
    return subscribers


def department_services(settings: Settings) -> list[ChildService]:
    """The departments' enforcers: by default one host process for all of them, scraped as
    one target per department (`department-<code>`); REDLINE_DEPARTMENTS=standalone: a
    process each, as a bureau with its own servers runs one."""
    codes = load_catalogue().codes
    if not settings.departments_hosted:
        return [
            observed(
                f"department-{code}",
                "services.entrypoints.department",
                code,
                db_role=department_role(code),
            )
            for code in codes
        ]
    port = free_port()
    return [
        ChildService(
            "department-host",
            "services.entrypoints.department_host",
            env=(("REDLINE_METRICS_PORT", str(port)),),
            metrics_port=port,
            departments=tuple(codes),
            scrape=(
                ("department-host", "/metrics/host"),
                *((f"department-{code}", f"/metrics/{code}") for code in codes),
            ),
        )
    ]


def child_services(settings: Settings) -> list[ChildService]:
    """Every service `make run` starts, in start order (stopped in reverse)."""
    api_port = _port(settings.api_port)
    services = [
        *system_services(settings),
        *department_services(settings),
        ChildService(
            "registry-api",
            "services.entrypoints.api",
            env=(("REDLINE_API_PORT", str(api_port)),),
            port=api_port,
            metrics_port=api_port,
            db_role="redline_registry",
        ),
    ]
    if settings.dev_keys:  # each demo subscriber signs with its development key
        services.extend(demo_subscribers(settings))
    if settings.demo and importlib.util.find_spec("demo") is None:
        # An installed copy carries no demo (#20): say so once rather than restart it.
        print(
            "redline: no demo here (it runs from a source checkout); set REDLINE_DEMO=0",
            file=sys.stderr,
        )
    elif settings.demo:
        services.append(
            ChildService(
                "demo",
                "services.entrypoints.cli",
                args=("demo", "--interval", "2"),
                db_role="redline_registry",
            )
        )
    return services


def write_scrape_targets(home: Path, services: list[ChildService]) -> Path:
    """Prometheus file_sd targets: every service's /metrics, labelled with its name.

    Beside them go the shipped prometheus.yml and alerts.yml, whose relative paths
    Prometheus resolves against their own directory. Written by rename: Prometheus
    watches the targets file and must never read half of it."""
    targets = [
        {
            "targets": [f"127.0.0.1:{service.metrics_port}"],
            "labels": {"service": label, **({"__metrics_path__": path} if path else {})},
        }
        for service in services
        if service.metrics_port
        for label, path in (service.scrape or ((service.name, ""),))
    ]
    directory = home / "prometheus"
    directory.mkdir(parents=True, exist_ok=True)
    for shipped in ("prometheus.yml", "alerts.yml"):
        shutil.copyfile(PROMETHEUS_CONFIG / shipped, directory / shipped)
    path = directory / "targets.json"
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(targets, indent=2) + "\n")
    partial.replace(path)
    return path


def prometheus_service(settings: Settings) -> ChildService | None:
    """A local Prometheus with the shipped config, when one is installed and not turned off
    (REDLINE_PROMETHEUS=off)."""
    binary = shutil.which("prometheus")
    if binary is None or not settings.prometheus:
        return None
    port = _port(9090)
    directory = settings.home / "prometheus"
    return ChildService(
        "prometheus",
        "",
        (
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ),
        port=port,
    )


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.children: list[tuple[ChildService, subprocess.Popen[bytes]]] = []
        self.stopping = threading.Event()
        self._env: dict[str, str] = {}
        self._role_urls: dict[str, str] = {}  # each service role's DATABASE_URL
        self._running: Settings | None = None  # the settings the children were given

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
        missing = settings.missing_keys()
        if missing:  # before anything is created: a production start needs its own keys
            raise ConfigError(
                f"{', '.join(missing)} not set: on external servers every key is configured; "
                "development keys only on the embedded servers or with REDLINE_DEV_KEYS=1"
            )
        asyncio.run(
            ensure_topics(
                kafka,
                replication_factor=settings.kafka_replication_factor,
                auth=settings.kafka_auth,
                embedded=self.broker is not None,
                topics=(*ALL_TOPICS, AUDIT_CHECKPOINTS),
            )
        )
        # As the migrator: every schema migrated, then a role per service with its grants;
        # each child connects as its own role, never as the migrator (#18).
        codes = load_catalogue().codes
        self._role_urls = asyncio.run(
            prepare_database(database, codes, role_passwords(settings, codes))
        )
        env = {
            **{name: value for name, value in os.environ.items() if name != "DATABASE_URL"},
            "KAFKA_BOOTSTRAP": kafka,
            "REDLINE_HOME": str(settings.home),
        }
        if settings.dev_keys:
            # The children get the servers' addresses, so they would count as production:
            # tell them the development keys are meant.
            env |= {
                "REDLINE_DEV_KEYS": "1",
                "REDLINE_TRUST_STORE": str(ensure_dev_keys(settings.home)),
                "REDLINE_SUBJECT_KEY": str(settings.subject_key),
            }
        self._env = env
        services = child_services(settings)
        write_scrape_targets(settings.home, services)
        prometheus = prometheus_service(settings)
        for service in [*services, *([prometheus] if prometheus else [])]:
            self.children.append((service, self._spawn(service)))
        for service, proc in self.children:
            if service.port is not None:
                self._wait_listening(service, proc, service.port)
        self._running = settings
        self._write_endpoints(settings)
        return settings

    def _spawn(self, service: ChildService) -> subprocess.Popen[bytes]:
        database = {"DATABASE_URL": self._role_urls[service.db_role]} if service.db_role else {}
        if service.departments:  # each department as its own role, never one for all
            urls = {code: self._role_urls[department_role(code)] for code in service.departments}
            database[DEPARTMENT_DATABASE_URLS] = json.dumps(urls)
            # The host has no role of its own: DATABASE_URL only completes the server pair.
            database["DATABASE_URL"] = next(iter(urls.values()))
        if service.hosted:  # each co-hosted service as its own role, never one for all
            hosted = {name: self._role_urls[role] for name, role in service.hosted}
            database[SYSTEM_DATABASE_URLS] = json.dumps(hosted)
            database["DATABASE_URL"] = next(iter(hosted.values()))  # completes the pair only
        return spawn(
            service.argv,
            log_path=self.settings.home / "logs" / f"{service.name}.log",
            env={**self._env, **database, **dict(service.env)},
        )

    def child(self, name: str) -> subprocess.Popen[bytes]:
        """The running process of the service called `name`."""
        for service, proc in self.children:
            if service.name == name:
                return proc
        raise KeyError(f"no service called {name!r}")

    def kill(self, name: str) -> int:
        """SIGKILL one service by its pid, as a crash would end it; returns the pid."""
        proc = self.child(name)
        proc.kill()
        proc.wait()
        return proc.pid

    def respawn(self, name: str) -> subprocess.Popen[bytes]:
        """Start a service that has ended again, as systemd or Kubernetes would."""
        for index, (service, proc) in enumerate(self.children):
            if service.name == name:
                if proc.poll() is None:
                    raise StartupError(f"{name} is still running as pid {proc.pid}")
                replacement = self._spawn(service)
                self.children[index] = (service, replacement)
                if self._running is not None:
                    self._write_endpoints(self._running)
                return replacement
        raise KeyError(f"no service called {name!r}")

    def restart_broker(self) -> None:
        """Stop the embedded broker and start it again on the same port. It keeps nothing:
        the topics are declared again at once, and the outboxes' relays republish."""
        if self.broker is None:
            raise StartupError("the broker is not embedded; it cannot be restarted from here")
        self.broker.stop()
        self.broker.start()
        asyncio.run(
            ensure_topics(
                self.broker.bootstrap,
                replication_factor=self.settings.kafka_replication_factor,
                embedded=True,
                topics=(*ALL_TOPICS, AUDIT_CHECKPOINTS),
            )
        )
        if self._running is not None:
            self._write_endpoints(self._running)

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
            "dev_keys": settings.dev_keys,
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
        # Owner-only (on external servers the database URL holds its password), and whole:
        # written aside and renamed over, so a reader never sees it half written.
        target = settings.endpoints_file
        staged = target.with_name(f".{target.name}.{os.getpid()}")
        staged.touch(mode=0o600)
        staged.chmod(0o600)
        staged.write_text(json.dumps(endpoints, indent=2) + "\n")
        os.replace(staged, target)

    def watch(self) -> int:
        """Block until asked to stop. A child that dies on its own is started again after a
        back-off that doubles while it keeps dying (as systemd's Restart=on-failure or a
        Kubernetes pod would): each service recovers by design, from its stored state."""
        backoffs: dict[str, Backoff] = {}
        due: dict[str, float] = {}
        started: dict[str, float] = {}
        while not self.stopping.wait(0.5):
            now = time.monotonic()
            for service, proc in list(self.children):
                if proc.poll() is None:
                    continue
                if service.name not in due:
                    backoff = backoffs.setdefault(service.name, Backoff(1.0, 30.0))
                    if now - started.get(service.name, float("-inf")) > 60:
                        backoff.reset()  # it ran steadily: a fresh failure, not a streak
                    delay = backoff.next()
                    due[service.name] = now + delay
                    print(
                        f"redline: {service.name} exited with {proc.returncode}; starting it "
                        f"again in {delay:.0f} s; see "
                        f"{self.settings.home / 'logs' / (service.name + '.log')}",
                        file=sys.stderr,
                        flush=True,
                    )
                elif now >= due[service.name]:
                    del due[service.name]
                    started[service.name] = now
                    self.respawn(service.name)
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
    mask_logging()
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
            f"kafka={settings.kafka_bootstrap} "
            f"database={redact_passwords(settings.database_url or '')}"
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
