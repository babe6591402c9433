"""The local check API: a bare ASGI app, no framework, because every request of a
supplier's point of sale passes through it (target: 5,000 req/s at p99 < 5 ms).

GET /v1/checks?measure=&subject=&site=
                                   200 blocked|clear, 503 stale, 422 bad input
GET /v1/health                     200 fresh, 503 stale (watermarks, offsets, counts)
GET /v1/blocks.csv?measure=        the current list as CSV (X-Redline-Status says stale)
GET /metrics                       Prometheus: staleness per list, checks by outcome
GET /openapi.json                  the OpenAPI document of the above (fuzzed in the tests)
GET /docs, /redoc                  that document for people, served whole from the
                                   installation (events/apidocs.py): no CDN needed
"""

from __future__ import annotations

import asyncio
import io
import json
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import IO, Any
from urllib.parse import parse_qsl

from connectors.subscriber.errors import ConnectorError, InvalidInput
from connectors.subscriber.metrics import CONTENT_TYPE, DaemonMetrics
from connectors.subscriber.results import Stale
from connectors.subscriber.view import BlocklistView
from connectors.subscriber.view import iso_time as _iso
from events.apidocs import OfflineDocs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json; charset=utf-8"), (b"cache-control", b"no-store")]
_CSV_CHUNK = 64 * 1024
_MAX_FIELDS = 10
_OUTCOME_OF = {503: "stale", 422: "refused"}  # else the body's own status
_FIELD_ORDER = {"query": 0, "measure": 1, "subject": 2, "site": 3}


def _dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _errors(*errors: tuple[str, str]) -> dict[str, Any]:
    return {"errors": [{"field": field, "reason": reason} for field, reason in errors]}


def _error_schema() -> dict[str, Any]:
    field = {
        "type": "object",
        "required": ["field", "reason"],
        "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
    }
    return {
        "type": "object",
        "required": ["errors"],
        "properties": {"errors": {"type": "array", "items": field, "minItems": 1}},
    }


def _json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_REFUSED = _json_answer("Bad input, each field named with the reason.", _error_schema())
_TIME = {"type": ["string", "null"], "format": "date-time"}
_AGE = {"type": ["number", "null"]}
_QUERY = {"style": "form", "explode": True}
_NON_BLANK = {"type": "string", "minLength": 1, "pattern": r"\S"}
_CLEAR_OR_BLOCKED = {
    "type": "object",
    "required": ["status", "measure"],
    "properties": {
        "status": {"enum": ["blocked", "clear"]},
        "measure": {"type": "string"},
        "blocked_elsewhere": {
            "type": "boolean",
            "description": "Clear at this site; the subject is blocked at another one.",
        },
        "target": {"enum": ["subject", "site", "project"]},
        "subject_hash": {"type": "string"},
        "subject_kind": {"type": "string"},
        "masked_name": {"type": "string"},
        "department": {"type": "string"},
        "legal_basis": {"type": "array", "items": {"type": "string"}},
        "cases": {"type": "array", "items": {"type": "object"}},
        "watermark": _TIME,
        "age_seconds": _AGE,
    },
}
_STALE = {
    "type": "object",
    "required": ["status", "measure", "watermark", "age_seconds", "bound_seconds", "reason"],
    "properties": {
        "status": {"const": "stale"},
        "measure": {"type": "string"},
        "watermark": _TIME,
        "age_seconds": _AGE,
        "bound_seconds": {"type": "number"},
        "reason": {"type": "string"},
        "last_known": _CLEAR_OR_BLOCKED,
    },
}
_HEALTH = {
    "type": "object",
    "required": ["status", "watermark", "age_seconds", "bound_seconds", "measures"],
    "properties": {
        "status": {"enum": ["fresh", "stale"]},
        "watermark": _TIME,
        "age_seconds": _AGE,
        "bound_seconds": {"type": "number"},
        "measures": {"type": "object"},
    },
}
_MEASURE = {
    "name": "measure",
    "in": "query",
    "required": True,
    "description": "A measure this subscriber serves, e.g. refuse_power_supply.",
    "schema": _NON_BLANK,
    **_QUERY,
}

# The check API's OpenAPI document: written out, as there is no framework to derive it.
OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Redline subscriber check API", "version": "1"},
    "paths": {
        "/v1/checks": {
            "get": {
                "summary": "Whether a subject is blocked under a measure (at a site, for a "
                "measure held against sites), from the local replica.",
                "parameters": [
                    _MEASURE,
                    {
                        "name": "subject",
                        "in": "query",
                        "required": True,
                        "description": "USCC or resident ID number, as presented.",
                        "schema": _NON_BLANK,
                        **_QUERY,
                    },
                    {
                        "name": "site",
                        "in": "query",
                        "required": False,
                        "description": (
                            "Where the supply is asked for: the real-estate unit code, else "
                            "the parcel code, else the address. Required for a measure held "
                            "against sites (water, power, gas); ignored for loans."
                        ),
                        "schema": {"type": "string"},
                        **_QUERY,
                    },
                ],
                "responses": {
                    "200": _json_answer(
                        "Blocked or clear, as of the watermark.", _CLEAR_OR_BLOCKED
                    ),
                    "422": _REFUSED,
                    "503": _json_answer("Stale: the replica cannot vouch for now.", _STALE),
                },
            }
        },
        "/v1/health": {
            "get": {
                "summary": "Watermarks, offsets, counts and queues.",
                "responses": {
                    "200": _json_answer("Every list is fresh.", _HEALTH),
                    "503": _json_answer("Some list is stale.", _HEALTH),
                },
            }
        },
        "/v1/blocks.csv": {
            "get": {
                "summary": "The current list of a measure as CSV.",
                "parameters": [_MEASURE],
                "responses": {
                    "200": {
                        "description": "The list; X-Redline-Status says fresh or stale.",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    "422": _REFUSED,
                },
            }
        },
    },
}


class ConnectorApp:
    """ASGI application over a `BlocklistView` (or a running `Subscriber`)."""

    def __init__(self, view: BlocklistView, metrics: DaemonMetrics | None = None) -> None:
        self.view = view
        self.metrics = metrics
        self.docs = OfflineDocs(OPENAPI["info"]["title"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if path == "/metrics" and self.metrics is not None:
            await self._metrics(send, self.metrics)
            return
        if path == "/openapi.json" and scope["method"] == "GET":
            await self._json(send, 200, OPENAPI)
            return
        if path not in ("/v1/checks", "/v1/health", "/v1/blocks.csv"):
            if self.docs.serves(path):  # past the check paths: a check pays nothing for it
                await self.docs.answer(scope, send)
                return
            await self._json(send, 404, _errors(("path", f"no resource {path}")))
            return
        if scope["method"] != "GET":
            await self._json(send, 405, _errors(("method", "only GET is allowed")))
            return
        try:
            if path == "/v1/checks":
                began = time.perf_counter()
                status, body = self._check(scope["query_string"])
                if self.metrics is not None:
                    outcome = _OUTCOME_OF.get(status) or body.get("status", "clear")
                    self.metrics.observe(outcome, time.perf_counter() - began)
                await self._json(send, status, body)
            elif path == "/v1/health":
                health = self.view.health()
                await self._json(send, 503 if health["status"] == "stale" else 200, health)
            else:
                await self._csv(scope["query_string"], send)
        except InvalidInput as exc:
            await self._json(send, 422, _errors((exc.field, exc.reason)))
        except ConnectorError as exc:
            await self._json(send, 500, _errors(("replica", str(exc))))

    def _params(self, query: bytes, names: tuple[str, ...]) -> tuple[dict[str, str], list[Any]]:
        try:
            # UTF-8: an address may be sent unescaped; an undecodable byte is no ID anyway.
            pairs = parse_qsl(
                query.decode("utf-8", errors="replace"),
                keep_blank_values=True,
                max_num_fields=_MAX_FIELDS,
            )
        except ValueError as exc:
            return {}, [("query", str(exc))]
        params: dict[str, str] = {}
        problems: list[tuple[str, str]] = []
        for name, value in pairs:
            if name in params:
                problems.append((name, "given more than once"))
            params[name] = value
        for name in names:
            if not params.get(name, "").strip():
                problems.append((name, "required"))
        return params, problems

    def _check(self, query: bytes) -> tuple[int, dict[str, Any]]:
        params, problems = self._params(query, ("measure", "subject"))
        measure, subject, site = (
            params.get("measure", ""),
            params.get("subject", ""),
            params.get("site"),
        )
        if measure and not self.view.serves(measure):
            problems.append(("measure", self.view.unserved(measure).reason))
        elif measure and self.view.by_site(measure) and not (site or "").strip():
            problems.append(("site", self.view.bad_site(measure, site).reason))
        if problems:
            # Name every bad field at once, in the order of the parameters.
            bad_subject = self.view.subject_problem(subject) if subject.strip() else None
            if bad_subject is not None:
                problems.append((bad_subject.field, bad_subject.reason))
            problems.sort(key=lambda problem: _FIELD_ORDER.get(problem[0], len(_FIELD_ORDER)))
            return 422, _errors(*problems)
        try:
            result = self.view.check(measure, subject, site)
        except InvalidInput as exc:
            return 422, _errors((exc.field, exc.reason))
        body = result.as_json()
        if isinstance(result, Stale):
            return 503, body
        fresh = self.view.freshness(measure)
        body["watermark"] = _iso(fresh.watermark)
        body["age_seconds"] = None if fresh.age_seconds is None else round(fresh.age_seconds, 3)
        return 200, body

    async def _csv(self, query: bytes, send: Send) -> None:
        params, problems = self._params(query, ("measure",))
        measure = params.get("measure", "")
        if measure and not self.view.serves(measure):
            problems.append(("measure", self.view.unserved(measure).reason))
        if problems:
            await self._json(send, 422, _errors(*problems))
            return
        fresh = self.view.freshness(measure)
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+b") as spool:
            # SQLite reads block, so the export runs in a worker thread, not the event loop.
            await asyncio.to_thread(self._export, measure, spool)
            spool.seek(0)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/csv; charset=utf-8"),
                        (
                            b"content-disposition",
                            f'attachment; filename="{measure}.csv"'.encode(),
                        ),
                        (b"x-redline-status", b"stale" if fresh.stale else b"fresh"),
                        (b"x-redline-age-seconds", str(fresh.age_seconds).encode()),
                    ],
                }
            )
            while True:
                chunk = spool.read(_CSV_CHUNK)
                await send({"type": "http.response.body", "body": chunk, "more_body": bool(chunk)})
                if not chunk:
                    return

    def _export(self, measure: str, spool: IO[bytes]) -> None:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
        self.view.export_csv(measure, text)
        text.flush()
        text.detach()

    @staticmethod
    async def _metrics(send: Send, metrics: DaemonMetrics) -> None:
        data = metrics.render()
        headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(data)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    @staticmethod
    async def _json(send: Send, status: int, body: Any) -> None:
        data = _dump(body)
        headers = [*_JSON, (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
