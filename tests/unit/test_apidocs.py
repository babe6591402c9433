"""The API documents' pages and assets, served from the installation (events/apidocs.py).

The browser test (tests/integration/test_pages_offline.py) shows them rendered; these pin
what any app that mounts them answers, the connector's bare ASGI app included.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from events import apidocs
from events.apidocs import DocsUnavailable, OfflineDocs, serve_offline_docs


def _client(app: Any, root_path: str = "") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    return httpx.AsyncClient(transport=transport, base_url="http://docs.internal")


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href|data-openapi)="([^"]+)"', html)


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_a_page_names_only_its_own_assets_and_document(path: str) -> None:
    async with _client(OfflineDocs("Redline <check> API")) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "http://" not in response.text and "https://" not in response.text
    assert "<script>" not in response.text  # nothing inline: the policy forbids it
    references = _references(response.text)
    assert "/openapi.json" in references
    assert all(ref.startswith("/docs/assets/") or ref == "/openapi.json" for ref in references)
    assert "<title>Redline &lt;check&gt; API – " in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy


async def test_behind_a_proxy_the_page_names_urls_under_its_root_path() -> None:
    async with _client(OfflineDocs("Redline"), root_path="/registry") as client:
        response = await client.get("/docs")
    references = _references(response.text)
    assert references and all(ref.startswith("/registry/") for ref in references)


@pytest.mark.parametrize(
    ("name", "kind", "contains"),
    [
        ("swagger-ui-bundle.js", "text/javascript", b"SwaggerUIBundle"),
        ("swagger-ui.css", "text/css", b".swagger-ui"),
        ("redoc.standalone.js", "text/javascript", b"Redoc"),
        ("swagger-init.js", "text/javascript", b"validatorUrl: null"),
        ("redoc-init.js", "text/javascript", b"Redoc.init"),
        ("favicon.png", "image/png", b"\x89PNG"),
    ],
)
async def test_each_asset_comes_from_the_installation(
    name: str, kind: str, contains: bytes
) -> None:
    async with _client(OfflineDocs("Redline")) as client:
        response = await client.get(f"/docs/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(kind)
    assert contains in response.content
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_an_unknown_asset_is_not_found_and_only_get_is_allowed() -> None:
    async with _client(OfflineDocs("Redline")) as client:
        missing = await client.get("/docs/assets/..%2F..%2Fcore.py")
        posted = await client.post("/docs")
        head = await client.head("/redoc")
    assert missing.status_code == 404
    assert posted.status_code == 405
    assert head.status_code == 200 and head.content == b""


def test_serves_names_the_pages_and_their_assets_only() -> None:
    assert OfflineDocs.serves("/docs") and OfflineDocs.serves("/redoc")
    assert OfflineDocs.serves("/docs/assets/swagger-ui.css")
    assert not OfflineDocs.serves("/docs/other") and not OfflineDocs.serves("/v1/checks")


def test_without_the_package_the_app_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DocsUnavailable, match="fastapi-offline"):
        OfflineDocs("Redline")


def test_a_package_without_a_file_is_named_with_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "static").mkdir()

    spec = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(DocsUnavailable, match=r"swagger-ui-bundle\.js"):
        apidocs.static_directory()


async def test_on_a_fastapi_app_the_pages_stay_out_of_its_openapi_document() -> None:
    app = FastAPI(title="Redline test", docs_url=None, redoc_url=None)

    @app.get("/v1/things")
    async def things() -> list[str]:
        return []

    serve_offline_docs(app, app.title)
    async with _client(app) as client:
        document = (await client.get("/openapi.json")).json()
        page = await client.get("/docs")
        asset = await client.get("/docs/assets/redoc.standalone.js")
    assert list(document["paths"]) == ["/v1/things"]
    assert page.status_code == 200 and "Redline test – Swagger UI" in page.text
    assert asset.status_code == 200
