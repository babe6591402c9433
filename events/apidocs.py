"""The API documents (/docs, /redoc) served whole from this installation, for closed networks.

Government networks that carry case data (政务外网, internal networks) reach no public CDN,
and FastAPI's own pages load Swagger UI and ReDoc from one: there they are blank. Here the
pages name only same-origin URLs, their scripts and styles come from the `fastapi-offline`
package (MIT; it ships Swagger UI 5 and ReDoc 2 bundles, Apache-2.0 and MIT, re-released
with each upstream version, so `pip` keeps them current and the repository holds no 2.7 MB
of minified copies), and a Content-Security-Policy forbids the browser any other origin:
what a bundle would fetch by itself (ReDoc's logo, Swagger's validator badge) never leaves.

Here, not in services/, because the connectors (which must not import services/) serve the
same pages over their bare ASGI app; like events/logmask.py, a small thing both sides need.
Only the package's files are used, found without importing it (it imports FastAPI, which
the connector does not load), and the pages are plain ASGI so any app can answer them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path
from typing import Any, Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DOCS = "/docs"
REDOC = "/redoc"
ASSETS = "/docs/assets"
OPENAPI = "/openapi.json"
PACKAGE = "fastapi_offline"

# Same origin only. Inline styles: Swagger UI and ReDoc set style attributes and inject
# <style> elements. Images from data: URIs (the bundles' icons); ReDoc's search worker.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)

# The page's settings travel in data- attributes, so no script is inline and the policy
# above needs no 'unsafe-inline' for scripts.
_SWAGGER_INIT = b"""(function () {
  var settings = document.currentScript.dataset;
  window.ui = SwaggerUIBundle({
    url: settings.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
"""
_REDOC_INIT = b"""(function () {
  var settings = document.currentScript.dataset;
  Redoc.init(settings.openapi, {}, document.getElementById("redoc"));
})();
"""
_OWN = {"swagger-init.js": _SWAGGER_INIT, "redoc-init.js": _REDOC_INIT}
_PACKAGED = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".png": b"image/png",
}


@dataclass(frozen=True)
class _Page:
    kind: str
    mount: str  # the id of the element the bundle renders into
    styles: tuple[str, ...]
    bundle: str
    init: str


_PAGES = {
    DOCS: _Page(
        "Swagger UI", "swagger-ui", ("swagger-ui.css",), "swagger-ui-bundle.js", "swagger-init.js"
    ),
    REDOC: _Page("ReDoc", "redoc", (), "redoc.standalone.js", "redoc-init.js"),
}


class DocsUnavailable(RuntimeError):
    """The package with the Swagger UI and ReDoc files is not installed, or lacks a file."""


def static_directory() -> Path:
    """Where the installed `fastapi-offline` keeps its files (its own code reads them so)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise DocsUnavailable(f"{PACKAGE} is not installed: pip install fastapi-offline")
    directory = Path(locations[0]) / "static"
    missing = [name for name in _PACKAGED if not (directory / name).is_file()]
    if missing:
        raise DocsUnavailable(f"{PACKAGE} in {directory} lacks {', '.join(missing)}")
    return directory


@cache
def _packaged(directory: Path, name: str) -> bytes:
    return (directory / name).read_bytes()


class OfflineDocs:
    """ASGI app for GET/HEAD /docs, /redoc and /docs/assets/<file>; `serves` says which."""

    def __init__(self, title: str, openapi_url: str = OPENAPI) -> None:
        self.title = title
        self.openapi_url = openapi_url
        self.directory = static_directory()  # fails at start-up, not on the first reader

    @staticmethod
    def serves(path: str) -> bool:
        return path in (DOCS, REDOC) or path.startswith(ASSETS + "/")

    def page(self, path: str, root: str = "") -> str:
        """The HTML of /docs or /redoc; `root` is the ASGI root_path behind a proxy."""
        page = _PAGES[path]
        assets, openapi = escape(root + ASSETS), escape(root + self.openapi_url)
        styles = "".join(f'<link rel="stylesheet" href="{assets}/{name}">' for name in page.styles)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(self.title)} – {page.kind}</title>"
            f'<link rel="icon" type="image/png" href="{assets}/favicon.png">{styles}'
            f'</head><body><div id="{page.mount}"></div>'
            f'<script src="{assets}/{page.bundle}"></script>'
            f'<script src="{assets}/{page.init}" data-openapi="{openapi}"></script>'
            "</body></html>\n"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.answer(scope, send)

    async def answer(self, scope: Scope, send: Send) -> None:
        """Answer one HTTP request for a path that `serves` (the request has no body)."""
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(scope, send, 405, b"text/plain; charset=utf-8", b"only GET\n")
        elif path in (DOCS, REDOC):
            html = self.page(path, scope.get("root_path", "")).encode()
            await _respond(scope, send, 200, b"text/html; charset=utf-8", html, cache=b"no-cache")
        else:
            await self._asset(scope, send, path.removeprefix(ASSETS + "/"))

    async def _asset(self, scope: Scope, send: Send, name: str) -> None:
        if name in _OWN:
            body = _OWN[name]
        elif name in _PACKAGED:
            body = _packaged(self.directory, name)
        else:
            await _respond(scope, send, 404, b"text/plain; charset=utf-8", b"no such asset\n")
            return
        kind = _TYPES[Path(name).suffix]
        await _respond(scope, send, 200, kind, body, cache=b"public, max-age=86400")


async def _respond(
    scope: Scope, send: Send, status: int, kind: bytes, body: bytes, *, cache: bytes = b"no-store"
) -> None:
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", cache),
        (b"content-security-policy", POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


class Routes(Protocol):
    """What `serve_offline_docs` needs of an app: Starlette's and FastAPI's add_route."""

    def add_route(
        self,
        path: str,
        route: Any,
        methods: list[str] | None = None,
        name: str | None = None,
        include_in_schema: bool = True,
    ) -> None: ...


def serve_offline_docs(app: Routes, title: str, openapi_url: str = OPENAPI) -> OfflineDocs:
    """Add /docs, /redoc and their assets to a FastAPI app built with docs_url=None and
    redoc_url=None. A bare ASGI app instead asks `docs.serves(path)` and awaits
    `docs.answer(scope, send)`."""
    docs = OfflineDocs(title, openapi_url)
    for path in (DOCS, REDOC, ASSETS + "/{name}"):
        # Starlette runs an endpoint that is not a function as an ASGI app.
        app.add_route(path, docs, methods=["GET", "HEAD"], include_in_schema=False)
    return docs
