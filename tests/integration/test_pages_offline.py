"""Every page works on a network with no way out, as a person would see it in a browser.

Government networks that carry case data reach no public CDN. Debian's chromium (`make
browser-tools`) runs headless against the registry API served by a real uvicorn on a free
loopback port, with every other host name made unresolvable, and dumps the DOM it built:
the API documents must show every operation, the township report its headings and charts.
Chromium's own network log then lists what each page asked for: nothing off the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from services.access import TokenStore
from services.blocklist.queries import CentralChecks
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.entrypoints.api import create_app
from services.registry.handlers import Registry
from services.townships.directory import load_townships
from tests.support import bearer, case_body, required_tool, serving

# The flags of the issue: no first-run, sync, update or background fetches of its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
    # No outside network: any host but the test server's fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
BROWSER_SECONDS = 120
TOWNSHIP = "duizhen"


@pytest.fixture(scope="module")
def chromium() -> str:
    return required_tool("chromium", "make browser-tools")


@dataclass
class Server:
    url: str
    settings: Settings


@pytest.fixture(scope="module")
async def server(
    settings: Settings, registry: Registry, queries: DepartmentQueries, checks: CentralChecks
) -> AsyncIterator[Server]:
    """The registry API on a real uvicorn, on a loopback port of its own, in this loop."""
    app = create_app(settings, registry, queries, checks, TokenStore.load(settings.api_tokens))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # log_config=None: the process's logging (and its ID masking) stays as the suite set it.
    config = uvicorn.Config(app, log_config=None, lifespan="on")
    try:
        async with serving(uvicorn.Server(config), [listener]):
            yield Server(f"http://127.0.0.1:{port}", settings)
    finally:
        listener.close()


# --- what the browser saw ---------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""


class _Dom(HTMLParser):
    """Every element with its attributes and its text (that of its descendants included)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        if tag not in {"meta", "link", "br", "img", "input", "hr", "source", "col", "wbr"}:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(Element(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data


@dataclass
class Page:
    elements: list[Element]
    requests: list[str] = field(default_factory=list)  # what the page itself asked for

    def all(self, tag: str) -> list[Element]:
        return [element for element in self.elements if element.tag == tag]

    def texts(self, tag: str) -> list[str]:
        return [" ".join(element.text.split()) for element in self.all(tag)]

    def ids(self) -> set[str]:
        return {element.attrs["id"] for element in self.elements if "id" in element.attrs}


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page's documents asked for (an initiator origin), not chromium's own."""
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short closes so, by its format's design
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start
        and event.get("params", {}).get("initiator", "not an origin") != "not an origin"
    ]


async def browse(chromium: str, url: str, scratch: Path) -> Page:
    """One headless chromium run: the DOM after scripts ran, and what the page fetched."""
    netlog = scratch / "netlog.json"
    process = await asyncio.create_subprocess_exec(
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={scratch / 'profile'}",
        f"--log-net-log={netlog}",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its renderers go with it if it must be ended
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), BROWSER_SECONDS)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)  # the group this test started, by its id
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    dom = _Dom()
    dom.feed(out.decode())
    return Page(dom.elements, _page_requests(netlog))


_URL = re.compile(r"""https?://[^\s"'<>)]+""")
_NAMESPACE = re.compile(r"""\sxmlns(:\w+)?="[^"]*\"""")


def outside_hosts(html: str, own: str) -> set[str]:
    """Hosts other than `own` that served HTML names (XML namespace names load nothing)."""
    named = {urlsplit(url).netloc for url in _URL.findall(_NAMESPACE.sub("", html))}
    return named - {urlsplit(own).netloc}


def off_server(requests: list[str], own: str) -> list[str]:
    return [url for url in requests if not url.startswith(own + "/")]


def fetched_from(server: Server, page: Page) -> set[str]:
    """The paths `page` fetched, once it is found to have asked no other host."""
    assert off_server(page.requests, server.url) == []
    return {urlsplit(url).path for url in page.requests}


async def _openapi(server: Server) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {**operation, "path": path}
        for path, methods in document["paths"].items()
        for operation in methods.values()
    ]


# --- the pages --------------------------------------------------------------------------


async def test_the_served_documents_name_no_outside_host(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for path in ("/docs", "/redoc"):
            response = await client.get(path)
            assert response.status_code == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"]
            assert outside_hosts(response.text, server.url) == set(), path
            for asset in re.findall(r'(?:src|href)="([^"]+)"', response.text):
                assert asset.startswith("/docs/assets/"), asset
                loaded = await client.get(asset)  # no token: a browser sends none
                assert loaded.status_code == 200, asset
                assert len(loaded.content) > 0, asset


async def test_swagger_ui_lists_every_operation_offline(
    server: Server, chromium: str, tmp_path: Path
) -> None:
    operations = _operations(await _openapi(server))
    assert len(operations) > 10  # the registry's API, not an empty document

    page = await browse(chromium, server.url + "/docs", tmp_path)

    ids = page.ids()
    for operation in operations:
        tag = (operation.get("tags") or ["default"])[0]
        assert f"operations-{tag}-{operation['operationId']}" in ids, operation["operationId"]
    shown_paths = {
        span.attrs["data-path"] for span in page.all("span") if "data-path" in span.attrs
    }
    assert {operation["path"] for operation in operations} <= shown_paths
    assert "/v1/cases" in shown_paths
    summaries = {
        " ".join(element.text.split())
        for element in page.all("div")
        if "opblock-summary-description" in element.attrs.get("class", "")
    }
    assert {operation["summary"] for operation in operations} <= summaries
    assert any(title.startswith("Redline registry") for title in page.texts("h1"))
    assert {"/docs/assets/swagger-ui-bundle.js", "/openapi.json"} <= fetched_from(server, page)


async def test_redoc_shows_every_operation_offline(
    server: Server, chromium: str, tmp_path: Path
) -> None:
    operations = _operations(await _openapi(server))

    page = await browse(chromium, server.url + "/redoc", tmp_path)

    assert page.texts("h1") == ["Redline registry (1)"]
    headings = set(page.texts("h2"))
    assert {operation["summary"] for operation in operations} <= headings
    assert {"/docs/assets/redoc.standalone.js", "/openapi.json"} <= fetched_from(server, page)


async def test_the_township_report_renders_its_headings_and_charts_offline(
    server: Server, chromium: str, tmp_path: Path
) -> None:
    home = server.settings.home
    officer, operator = bearer(home, "case-officer"), bearer(home, "operator")
    async with httpx.AsyncClient(base_url=server.url) as client:
        filed = await client.post("/v1/cases", json=case_body(), headers=officer)
        assert filed.status_code == 201, filed.text
        now = datetime.now(ZoneInfo(server.settings.timezone))
        quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
        response = await client.get(
            "/v1/reports/township",
            params={"quarter": quarter, "township": TOWNSHIP, "format": "html"},
            headers=operator,
        )
    assert response.status_code == 200, response.text
    html = response.text
    assert outside_hosts(html, server.url) == set()
    # Opened as a downloaded report is: from a file, with no server behind it.
    report = tmp_path / "township.html"
    report.write_text(html, encoding="utf-8")

    page = await browse(chromium, report.as_uri(), tmp_path)

    assert page.texts("h1") == [f"耕地保护责任落实情况季度报告 {quarter}"]
    assert {"立案占地面积（按地类）", "各乡镇数据"} <= set(page.texts("h2"))
    charts = page.all("svg")
    assert len(charts) >= 2
    assert page.all("rect"), "the charts draw no bars"
    chart_labels = " ".join(page.texts("text"))
    assert "立案占地面积（亩）" in chart_labels
    assert load_townships()[TOWNSHIP].name in chart_labels
    assert any(load_townships()[TOWNSHIP].name in row for row in page.texts("tr"))
    assert page.requests == []  # inline style and inline SVG: nothing fetched at all
