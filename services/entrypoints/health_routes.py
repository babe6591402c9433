"""What operators ask the registry's API: /healthz for probes (no token, cheap by
construction) and /metrics for Prometheus."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict

from services.adapters.kafka import client_options
from services.blocklist.queries import CentralChecks
from services.config import KafkaAuth, Settings
from services.errors import DatabaseError, RedlineError

PROBE_TIMEOUT = 3.0
log = logging.getLogger("redline.api")


class Health(BaseModel):
    """`ok` when the database and the broker answer, else what is wrong with each."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded", "down"]


def serve_health(app: FastAPI, settings: Settings) -> None:
    """/metrics and /healthz; the probes are kept on the app, closed with it."""
    _serve_metrics(app)
    _serve_healthz(app, settings)


def _serve_metrics(app: FastAPI) -> None:
    """/metrics on the API's own port."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _serve_healthz(app: FastAPI, settings: Settings) -> None:
    """GET /healthz, open to anyone (probes send no token): cheap by construction."""
    app.state.health = HealthProbes(app, settings)

    @app.get(
        "/healthz",
        response_model=Health,
        responses={503: {"model": Health, "description": "The database or the broker is down."}},
    )
    async def healthz(request: Request) -> JSONResponse:
        """From the checks' connection pool and one long-lived broker client, each probed at
        most once a few seconds however often this is asked: it needs no token, so it must
        cost a caller nothing."""
        try:
            settings.require()
        except RedlineError as exc:
            return JSONResponse(status_code=503, content={"status": "down", "error": str(exc)})
        probes: HealthProbes = request.app.state.health
        checks = {"database": await probes.database(), "broker": await probes.broker()}
        healthy = all(value == "ok" for value in checks.values())
        return JSONResponse(
            status_code=200 if healthy else 503,
            content={"status": "ok" if healthy else "degraded", **checks},
        )


class CachedProbe:
    """A probe run at most once per `ttl` seconds however many ask: concurrent callers
    share one run, later ones its result until it is older than `ttl`."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[str]],
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe = probe
        self.ttl = ttl
        self.monotonic = monotonic
        self._result: tuple[str, float] | None = None
        self._lock: asyncio.Lock | None = None  # made on first use, in the serving loop

    def _cached(self) -> str | None:
        if self._result is not None and self.monotonic() - self._result[1] < self.ttl:
            return self._result[0]
        return None

    async def __call__(self) -> str:
        cached = self._cached()
        if cached is not None:
            return cached
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            cached = self._cached()  # another caller probed while this one waited
            if cached is None:
                cached = await self.probe()
                self._result = (cached, self.monotonic())
        return cached


class BrokerProbe:
    """Lists the topics over one admin client kept open between probes, made again only
    after a failure (a client per request cost a connection and a metadata round each)."""

    def __init__(self, bootstrap: str, auth: KafkaAuth | None) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self._admin: AIOKafkaAdminClient | None = None

    async def __call__(self) -> str:
        try:
            if self._admin is None:
                self._admin = AIOKafkaAdminClient(
                    bootstrap_servers=self.bootstrap,
                    request_timeout_ms=2000,
                    **client_options(self.auth),
                )
                await asyncio.wait_for(self._admin.start(), PROBE_TIMEOUT)
            await asyncio.wait_for(self._admin.list_topics(), PROBE_TIMEOUT)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("health: broker unreachable: %r", exc)
            await self.close()
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                await admin.close()
            except (KafkaError, OSError) as exc:  # closing a broken client: nothing to keep
                log.debug("health: closing the broker probe: %r", exc)


class HealthProbes:
    """/healthz's probes: the database through the checks' pool (cached a second), the
    broker through one kept client (cached a few seconds)."""

    DATABASE_TTL = 1.0
    BROKER_TTL = 5.0

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._broker: BrokerProbe | None = None
        self.database = CachedProbe(self._ping_database, self.DATABASE_TTL)
        self.broker = CachedProbe(self._probe_broker, self.BROKER_TTL)

    async def _ping_database(self) -> str:
        central: CentralChecks = self.app.state.checks
        try:
            await asyncio.wait_for(central.ping(), PROBE_TIMEOUT)
        except (DatabaseError, TimeoutError) as exc:
            log.warning("health: database unreachable: %s", exc)
            return f"unreachable: {type(exc).__name__}"
        return "ok"

    async def _probe_broker(self) -> str:
        if self._broker is None:
            kafka, _ = self.settings.require()
            self._broker = BrokerProbe(kafka, self.settings.kafka_auth)
        return await self._broker()

    async def close(self) -> None:
        if self._broker is not None:
            await self._broker.close()
