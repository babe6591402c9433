"""The local check API: a bare ASGI app, no framework, because every request of a
supplier's point of sale passes through it (target: 5,000 req/s at p99 < 5 ms).

POST /v1/checks {measure, subject, site?}
                                   200 blocked|clear, 503 stale, 422 bad input; preferred
                                   to GET, as the ID number stays out of URLs and logs
GET /v1/checks?measure=&subject=&site=
                                   the same, for callers that can only GET
GET /v1/health                     200 fresh, 503 stale (watermarks, offsets, counts)
GET /v1/blocks.csv?measure=        the current list as CSV (X-Redline-Status says stale)
GET /metrics                       Prometheus: staleness per list, checks by outcome
GET /openapi.json                  the OpenAPI document of the above (fuzzed in the tests)
GET /docs, /redoc                  that document for people, served whole from the
                                   installation (events/apidocs.py): no CDN needed

Checks and the CSV need a bearer token (401 naming why not); checks are rate limited per
token (429 with Retry-After). Health, metrics and the documents are open (access.py).
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

from connectors.subscriber.access import Access, Refusal
from connectors.subscriber.errors import ConnectorError, InvalidInput
from connectors.subscriber.metrics import CONTENT_TYPE, DaemonMetrics
from connectors.subscriber.openapi import MAX_BODY as _MAX_BODY
from connectors.subscriber.openapi import OPENAPI
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
_FIELD_ORDER = {"query": 0, "body": 0, "measure": 1, "subject": 2, "site": 3}
_CHECK_FIELDS = ("measure", "subject", "site")
_METHODS = {"/v1/checks": ("GET", "POST"), "/v1/health": ("GET",), "/v1/blocks.csv": ("GET",)}
_JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", list: "an array"}
_REALM = b'Bearer realm="redline-connector"'


def _dump(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _errors(*errors: tuple[str, str]) -> dict[str, Any]:
    return {"errors": [{"field": field, "reason": reason} for field, reason in errors]}


class ConnectorApp:
    """ASGI application over a `BlocklistView` (or a running `Subscriber`).

    `access` is required: `Access.open()` says in so many words that no token is asked."""

    def __init__(
        self, view: BlocklistView, metrics: DaemonMetrics | None = None, *, access: Access
    ) -> None:
        self.view = view
        self.metrics = metrics
        self.access = access
        self.docs = OfflineDocs(OPENAPI["info"]["title"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
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

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == "/metrics" and self.metrics is not None:
            await self._metrics(send, self.metrics)
            return
        if path == "/openapi.json" and scope["method"] == "GET":
            await self._json(send, 200, OPENAPI)
            return
        methods = _METHODS.get(path)
        if methods is None:
            if self.docs.serves(path):  # past the check paths: a check pays nothing for it
                await self.docs.answer(scope, send)
                return
            await self._json(send, 404, _errors(("path", f"no resource {path}")))
            return
        method = scope["method"]
        if method not in methods:
            allowed = " and ".join(methods)
            headers = [(b"allow", ", ".join(methods).encode())]
            await self._json(send, 405, _errors(("method", f"only {allowed}")), headers)
            return
        try:
            if path == "/v1/health":
                health = self.view.health()
                await self._json(send, 503 if health["status"] == "stale" else 200, health)
                return
            caller = self.access.caller(scope["headers"])
            if isinstance(caller, Refusal):
                await self._refuse(send, caller)
            elif path == "/v1/checks":
                await self._checks(scope, receive, send, caller)
            else:
                await self._csv(scope["query_string"], send)
        except InvalidInput as exc:
            await self._json(send, 422, _errors((exc.field, exc.reason)))
        except ConnectorError as exc:
            await self._json(send, 500, _errors(("replica", str(exc))))

    async def _checks(self, scope: Scope, receive: Receive, send: Send, caller: str) -> None:
        limited = self.access.spend(caller)
        if limited is not None:
            await self._refuse(send, limited)
            return
        began = time.perf_counter()
        if scope["method"] == "POST":
            data = await _read_body(receive)
            if data is None:
                reason = f"at most {_MAX_BODY} bytes"
                await self._json(send, 413, _errors(("body", reason)))
                return
            params, problems = _body_params(data)
        else:
            params, problems = self._params(scope["query_string"], ("measure", "subject"))
        status, body = self._check(params, problems)
        if self.metrics is not None:
            outcome = _OUTCOME_OF.get(status) or body.get("status", "clear")
            self.metrics.observe(outcome, time.perf_counter() - began)
        await self._json(send, status, body)

    async def _refuse(self, send: Send, refusal: Refusal) -> None:
        if refusal.status == 401:
            headers = [(b"www-authenticate", _REALM)]
        else:
            headers = [(b"retry-after", str(refusal.retry_after or 1).encode())]
        await self._json(send, refusal.status, _errors(("authorization", refusal.reason)), headers)

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

    def _check(
        self, params: dict[str, str], problems: list[tuple[str, str]]
    ) -> tuple[int, dict[str, Any]]:
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
    async def _json(
        send: Send, status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        data = _dump(body)
        headers = [*_JSON, (b"content-length", str(len(data)).encode()), *(extra or ())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None once it is over `_MAX_BODY` bytes (not read further)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)  # the client went away: answered to no one
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (as the query string does)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"{key!r} is given more than once")
        seen[key] = value
    return seen


def _body_params(data: bytes) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A POSTed check's fields, and every problem with them, each naming its field."""
    try:
        document = json.loads(data, object_pairs_hook=_unique_keys)
    except ValueError as exc:  # also UnicodeDecodeError; the message quotes no ID
        return {}, [("body", f"not a JSON object: {exc}")]
    if not isinstance(document, dict):
        return {}, [("body", "must be a JSON object of measure, subject and site")]
    problems = [
        (str(name), "unknown field: a check has only measure, subject and site")
        for name in document
        if name not in _CHECK_FIELDS
    ]
    params: dict[str, str] = {}
    for name in _CHECK_FIELDS:
        value = document.get(name)
        if value is None:
            if name != "site":
                problems.append((name, "required"))
            continue
        if not isinstance(value, str):
            kind = _JSON_TYPES.get(type(value), "an object")
            problems.append((name, f"must be a string, not {kind}"))
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problems.append((name, "not valid Unicode (an unpaired surrogate)"))
            continue
        if name != "site" and not value.strip():
            problems.append((name, "required"))
            continue
        params[name] = value
    return params, problems
