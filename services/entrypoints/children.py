"""What `make run` starts: a child service process, and the bus's own services, which it
starts in one system host process (#19) unless REDLINE_SYSTEM=standalone."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from services.config import Settings
from services.entrypoints.system_host import ROLES, SYSTEM_HOST
from services.runtime.processes import free_port

ALONE = ("relay",)  # the bus's own services `make run` keeps out of the system host


@dataclass(frozen=True)
class ChildService:
    """One long-running service process and the address it serves, if any."""

    name: str
    module: str  # run as `python -m module args`; empty: `args` is the whole command
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    port: int | None = None
    metrics_port: int | None = None  # where Prometheus scrapes /metrics
    db_role: str | None = None  # the database role it connects as; None: no database
    # A department host: the departments it runs, each connecting as its own role.
    departments: tuple[str, ...] = ()
    # A system host: the services it runs, each as (name, the role it connects as).
    hosted: tuple[tuple[str, str], ...] = ()
    # Prometheus targets as (service label, metrics path); empty: one, its name at /metrics.
    scrape: tuple[tuple[str, str], ...] = ()

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args] if self.module else [*self.args]

    @property
    def address(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def metrics(self) -> str | None:
        return f"http://127.0.0.1:{self.metrics_port}/metrics" if self.metrics_port else None


def observed(name: str, module: str, *args: str, db_role: str) -> ChildService:
    """A service that serves its metrics on a port of its own."""
    port = free_port()
    return ChildService(
        name,
        module,
        args,
        env=(("REDLINE_METRICS_PORT", str(port)),),
        metrics_port=port,
        db_role=db_role,
    )


def system_services(settings: Settings) -> list[ChildService]:
    """The relay, feedback tracker, blocklist builder, monitor and audit anchor. By default
    the registry's relay runs alone and the others in one host process, scraped as one
    target per service under the name it always had (so `up{service="monitor"}` still means
    the monitor); REDLINE_SYSTEM=standalone: a process each (the audit anchor's serves no
    metrics).

    The relay is the head of every fan-out: in the host it waited behind the tracker
    verifying batches of acknowledgements (201 -> relay sent, p50 97 ms at 50 cases/s; 2 ms
    alone), so it keeps an event loop of its own (#19)."""
    if not settings.system_hosted:
        return [
            ChildService(name, _module(name), db_role=role)
            if name == "audit-anchor"
            else observed(name, _module(name), db_role=role)
            for name, role in ROLES.items()
        ]
    hosted = {name: role for name, role in ROLES.items() if name not in ALONE}
    port = free_port()
    return [
        *(observed(name, _module(name), db_role=ROLES[name]) for name in ALONE),
        ChildService(
            SYSTEM_HOST,
            "services.entrypoints.system_host",
            args=tuple(hosted),
            env=(("REDLINE_METRICS_PORT", str(port)),),
            metrics_port=port,
            hosted=tuple(hosted.items()),
            scrape=tuple((name, f"/metrics/{name}") for name in (SYSTEM_HOST, *hosted)),
        ),
    ]


def _module(name: str) -> str:
    """A service's standalone entry point: `audit-anchor` -> services.entrypoints.audit_anchor."""
    return f"services.entrypoints.{name.replace('-', '_')}"
