"""The check API (a bare ASGI app) and the CSV export, on a replica in a temporary file."""

from __future__ import annotations

import asyncio
import csv
import io
import ipaddress
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.subscriber.access import Access, RateLimiter, TokenSet, token_hash
from connectors.subscriber.api import ConnectorApp
from connectors.subscriber.daemon import address, bind, make_server
from connectors.subscriber.export import HEADER
from connectors.subscriber.metrics import DaemonMetrics
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import Deployment, ManualClock, record
from tests.support import eventually, new_uscc
from tests.unit.builders import POWER, PREMISES, SUBSCRIBER, UNIT

TOKEN = "billing-system-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _access(limiter: RateLimiter | None = None) -> Access:
    return Access(TokenSet([("billing", token_hash(TOKEN))]), limiter)


@pytest.fixture
def subscriber(deployment: Deployment, clock: ManualClock) -> Subscriber:
    return Subscriber(deployment.config(SUBSCRIBER, (POWER,)), clock=clock)


@pytest.fixture
async def client(subscriber: Subscriber) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=ConnectorApp(subscriber, access=_access()))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://connector", headers=AUTH
    ) as client:
        yield client


def _vouch(subscriber: Subscriber, deployment: Deployment, at: float, offset: int = 0) -> None:
    moment = datetime.fromtimestamp(at, UTC)
    subscriber.apply_records(
        [
            record(POWER, p, offset, *deployment.factory.heartbeat(POWER, p, moment))
            for p in range(3)
        ]
    )


def _block(subscriber: Subscriber, deployment: Deployment, subject: str, offset: int) -> None:
    key, value, _ = deployment.factory.entry(
        POWER, subject, case_ids=("case-7", "case-9"), sites=(PREMISES, PREMISES)
    )
    partition = deployment.factory.partition(POWER, subject)
    subscriber.apply_records([record(POWER, partition, offset, key, value)])


@pytest.fixture
def blocked_subject(subscriber: Subscriber, deployment: Deployment, clock: ManualClock) -> str:
    """A subject blocked at PREMISES by cases case-7 and case-9, on a replica vouched for now."""
    subject = new_uscc()
    _block(subscriber, deployment, subject, offset=10)
    _vouch(subscriber, deployment, clock.now, offset=11)
    return subject


async def test_clear_and_blocked_answer_200(
    client: httpx.AsyncClient, blocked_subject: str
) -> None:
    clear = await client.get(
        "/v1/checks", params={"measure": POWER, "subject": new_uscc(), "site": UNIT}
    )
    assert clear.status_code == 200
    assert clear.json()["status"] == "clear"
    assert clear.json()["blocked_elsewhere"] is False
    assert clear.json()["age_seconds"] == 0.0

    blocked = await client.get(
        "/v1/checks", params={"measure": POWER, "subject": blocked_subject, "site": UNIT}
    )
    assert blocked.status_code == 200
    body = blocked.json()
    assert body["status"] == "blocked"
    assert body["target"] == "site"
    assert body["masked_name"] == "孝*********"
    assert [c["case_id"] for c in body["cases"]] == ["case-7", "case-9"]
    assert body["cases"][0]["facts"] == ["business_premises"] and body["cases"][0]["rule"]
    assert "seed §三" in body["legal_basis"][0]
    assert blocked_subject not in blocked.text

    elsewhere = await client.get(
        "/v1/checks",
        params={"measure": POWER, "subject": blocked_subject, "site": "孝义市梧桐镇西村 12 号"},
    )
    assert elsewhere.status_code == 200
    assert elsewhere.json() == {
        "status": "clear",
        "measure": POWER,
        "blocked_elsewhere": True,
        "watermark": elsewhere.json()["watermark"],
        "age_seconds": 0.0,
    }  # nothing about the other site: no cases, no name


async def test_stale_answers_503_and_never_clear(
    client: httpx.AsyncClient, subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    params = {"measure": POWER, "subject": new_uscc(), "site": UNIT}
    never = await client.get("/v1/checks", params=params)
    assert never.status_code == 503
    assert never.json()["status"] == "stale"
    assert never.json()["watermark"] is None

    _vouch(subscriber, deployment, clock.now)
    assert (await client.get("/v1/checks", params=params)).status_code == 200
    clock.now += 31
    old = await client.get("/v1/checks", params=params)
    assert old.status_code == 503
    assert old.json()["age_seconds"] == pytest.approx(31)
    assert old.json()["last_known"]["status"] == "clear"


VALID = new_uscc()
SITE_REQUIRED = "required for refuse_power_supply: it is held against the site"


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ({}, [("measure", "required"), ("subject", "required")]),
        ({"measure": POWER}, [("subject", "required"), ("site", SITE_REQUIRED)]),
        ({"measure": POWER, "subject": " ", "site": UNIT}, [("subject", "required")]),
        (
            {"measure": "refuse_loans", "subject": "x"},
            [("measure", "not served"), ("subject", "18 characters")],
        ),
        (
            {"measure": POWER, "subject": "91350100M000100Y42", "site": UNIT},
            [("subject", "check character")],
        ),
        ({"measure": POWER, "subject": "12345", "site": UNIT}, [("subject", "18 characters")]),
        ({"measure": POWER, "subject": VALID}, [("site", SITE_REQUIRED)]),
        ({"measure": POWER, "subject": VALID, "site": "  "}, [("site", SITE_REQUIRED)]),
        ({"measure": POWER, "subject": VALID, "site": "x" * 4001}, [("site", "at most 4000")]),
        (
            {"measure": POWER, "subject": "12345"},
            [("subject", "18 characters"), ("site", SITE_REQUIRED)],
        ),
    ],
)
async def test_bad_input_answers_422_naming_each_field(
    client: httpx.AsyncClient, query: dict[str, str], errors: list[tuple[str, str]]
) -> None:
    response = await client.get("/v1/checks", params=query)
    assert response.status_code == 422
    got = response.json()["errors"]
    assert [e["field"] for e in got] == [field for field, _ in errors]
    for error, (_, fragment) in zip(got, errors, strict=True):
        assert fragment in error["reason"]


async def test_a_repeated_parameter_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"/v1/checks?measure={POWER}&measure={POWER}&subject={VALID}&site={UNIT}"
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "measure", "reason": "given more than once"}]


async def test_unknown_paths_and_methods(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/nothing")).status_code == 404
    refused = await client.put("/v1/checks")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, POST"
    assert (await client.post("/v1/health")).status_code == 405


async def test_health_reports_watermark_offsets_and_counts(
    client: httpx.AsyncClient, subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    stale = await client.get("/v1/health")
    assert stale.status_code == 503
    assert stale.json()["status"] == "stale"

    _block(subscriber, deployment, new_uscc(), offset=0)
    _vouch(subscriber, deployment, clock.now - 2, offset=1)
    health = (await client.get("/v1/health")).json()
    assert health["status"] == "fresh"
    assert health["subscriber"] == SUBSCRIBER
    assert health["age_seconds"] == pytest.approx(2)
    measure = health["measures"][POWER]
    assert measure["entries"] == 1
    assert [p["next_offset"] for p in measure["partitions"]] == [2, 2, 2]
    assert health["queued_events"] == 2  # the acknowledgements of case-7 and case-9
    assert health["consumer"]["running"] is False


async def test_the_csv_lists_the_current_blocks(
    client: httpx.AsyncClient, subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    subjects = [new_uscc() for _ in range(3)]
    for offset, subject in enumerate(subjects):
        _block(subscriber, deployment, subject, offset)
    _vouch(subscriber, deployment, clock.now, offset=3)

    response = await client.get("/v1/blocks.csv", params={"measure": POWER})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-redline-status"] == "fresh"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == HEADER
    hashes = sorted(deployment.factory.subject_hash(s, POWER) for s in subjects)
    assert [row[1] for row in rows[1:]] == hashes
    assert rows[1][0] == POWER
    assert rows[1][4] == "case-7;case-9"
    assert rows[1][6] == "2026-10-12T00:00:00+00:00"
    assert rows[1][7] == "site"
    held_at = ",".join(deployment.factory.site_hashes(PREMISES, POWER))
    assert rows[1][8] == f"{held_at};{held_at}"  # each case's site, in case order
    assert UNIT not in response.text  # the site itself is never in the replica

    text = io.StringIO()
    assert subscriber.export_csv(POWER, text) == 3
    assert text.getvalue() == response.text

    refused = await client.get("/v1/blocks.csv", params={"measure": "refuse_gas_supply"})
    assert refused.status_code == 422


async def test_metrics_report_staleness_and_count_checks_by_outcome(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    metrics = DaemonMetrics(SUBSCRIBER, subscriber)
    staleness = (
        f'redline_subscriber_staleness_seconds{{measure="{POWER}",subscriber="{SUBSCRIBER}"}} '
    )
    transport = httpx.ASGITransport(app=ConnectorApp(subscriber, metrics, access=_access()))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://connector", headers=AUTH
    ) as client:
        never = (await client.get("/metrics")).text
        assert f"{staleness}+Inf" in never
        _vouch(subscriber, deployment, clock.now - 4.0)
        await client.get(
            "/v1/checks", params={"measure": POWER, "subject": new_uscc(), "site": UNIT}
        )
        await client.get(
            "/v1/checks", params={"measure": POWER, "subject": "not-an-id", "site": UNIT}
        )
        text = (await client.get("/metrics")).text
    [value] = [
        line.removeprefix(staleness) for line in text.splitlines() if line.startswith(staleness)
    ]
    assert float(value) == pytest.approx(4.0, abs=0.01)
    assert 'redline_check_requests_total{outcome="clear",service="subscriber"} 1.0' in text
    assert 'redline_check_requests_total{outcome="refused",service="subscriber"} 1.0' in text
    assert 'redline_check_duration_seconds_count{service="subscriber"} 2.0' in text


async def test_the_api_documents_are_served_from_the_installation(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/" in page.text
    assert "https://" not in page.text  # no CDN: the connector runs on closed networks
    script = await client.get("/docs/assets/redoc.standalone.js")
    assert script.status_code == 200 and len(script.content) > 10_000
    assert (await client.get("/docs/assets/nothing.js")).status_code == 404


# --- who may check, how often, and how (item 9 of issue #18) -------------------------------


def _app(subscriber: Subscriber, limiter: RateLimiter | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=ConnectorApp(subscriber, access=_access(limiter)))
    return httpx.AsyncClient(transport=transport, base_url="http://connector")


async def test_checks_and_the_list_need_a_known_bearer_token(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    _vouch(subscriber, deployment, clock.now)
    query = {"measure": POWER, "subject": new_uscc(), "site": UNIT}
    async with _app(subscriber) as anyone:
        refusals = {
            "a bearer token is required": {},
            "is not known": {"Authorization": "Bearer billing-system-tokem"},
            "must be 'Bearer <token>'": {"Authorization": f"Basic {TOKEN}"},
        }
        for reason, headers in refusals.items():
            for path in ("/v1/checks", "/v1/blocks.csv"):
                refused = await anyone.get(path, params=query, headers=headers)
                assert refused.status_code == 401, (path, headers)
                assert refused.headers["www-authenticate"].startswith("Bearer")
                [error] = refused.json()["errors"]
                assert error["field"] == "authorization" and reason in error["reason"]
                assert query["subject"] not in refused.text
            posted = await anyone.post("/v1/checks", json=query, headers=headers)
            assert posted.status_code == 401
        answered = await anyone.get("/v1/checks", params=query, headers=AUTH)
        assert answered.status_code == 200 and answered.json()["status"] == "clear"
        # Open to all: health, the documents (a browser sends no token), and what they load.
        for path in ("/v1/health", "/openapi.json", "/docs", "/redoc"):
            assert (await anyone.get(path)).status_code == 200, path


async def test_a_burst_of_checks_is_refused_429_with_retry_after(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock
) -> None:
    _vouch(subscriber, deployment, clock.now)
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    query = {"measure": POWER, "subject": new_uscc(), "site": UNIT}
    async with _app(subscriber, limiter) as client:
        statuses = [
            (await client.get("/v1/checks", params=query, headers=AUTH)).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        limited = await client.post("/v1/checks", json=query, headers=AUTH)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "1"
        assert "too many checks for token billing" in limited.json()["errors"][0]["reason"]
        assert (await client.get("/v1/health")).status_code == 200  # health is not a check
        now[0] += 0.5  # two a second: one more
        assert (await client.get("/v1/checks", params=query, headers=AUTH)).status_code == 200
        assert (await client.get("/v1/checks", params=query, headers=AUTH)).status_code == 429


async def test_a_posted_check_answers_as_the_query_does(
    client: httpx.AsyncClient, blocked_subject: str
) -> None:
    for site in (UNIT, "孝义市梧桐镇西村 12 号"):
        fields = {"measure": POWER, "subject": blocked_subject, "site": site}
        posted = await client.post("/v1/checks", json=fields)
        assert posted.status_code == 200
        assert posted.json() == (await client.get("/v1/checks", params=fields)).json()
    assert posted.json()["blocked_elsewhere"] is True
    loans_style = await client.post(
        "/v1/checks", json={"measure": POWER, "subject": blocked_subject}
    )
    assert loans_style.status_code == 422
    assert loans_style.json()["errors"][0]["field"] == "site"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (b"", [("body", "not a JSON object")]),
        (b"measure=x", [("body", "not a JSON object")]),
        (b"[1, 2]", [("body", "must be a JSON object")]),
        (
            b'{"measure": 1, "subject": ["x"], "site": UNIT}',
            [
                ("measure", "must be a string, not a number"),
                ("subject", "must be a string, not an array"),
            ],
        ),
        (b'{"subject": " ", "site": UNIT}', [("measure", "required"), ("subject", "required")]),
        (
            b'{"measure": MEASURE, "subject": VALID, "site": UNIT, "name": "x"}',
            [
                ("name", "unknown field"),
            ],
        ),
        (
            b'{"measure": MEASURE, "measure": MEASURE, "subject": VALID}',
            [
                ("body", "given more than once"),
            ],
        ),
        (
            b'{"measure": MEASURE, "subject": "\\ud800", "site": UNIT}',
            [
                ("subject", "unpaired surrogate"),
            ],
        ),
        (
            b'{"measure": MEASURE, "subject": "12345", "site": null}',
            [
                ("subject", "18 characters"),
                ("site", SITE_REQUIRED),
            ],
        ),
    ],
)
async def test_a_posted_check_refuses_bad_fields_naming_each(
    client: httpx.AsyncClient, body: bytes, errors: list[tuple[str, str]]
) -> None:
    data = (
        body.replace(b"MEASURE", f'"{POWER}"'.encode())
        .replace(b"VALID", f'"{VALID}"'.encode())
        .replace(b"UNIT", f'"{UNIT}"'.encode())
    )
    response = await client.post(
        "/v1/checks", content=data, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    got = response.json()["errors"]
    assert [e["field"] for e in got] == [field for field, _ in errors]
    for error, (_, fragment) in zip(got, errors, strict=True):
        assert fragment in error["reason"]


async def test_an_oversized_check_body_is_refused_413(client: httpx.AsyncClient) -> None:
    fields = {"measure": POWER, "subject": VALID, "site": "x" * 20_000}
    response = await client.post("/v1/checks", json=fields)
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "body"


async def test_the_document_lists_both_checks_and_the_bearer_scheme(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    checks = document["paths"]["/v1/checks"]
    assert set(checks) == {"get", "post"}
    assert checks["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "measure",
        "subject",
    ]
    assert {"401", "429"} <= set(checks["post"]["responses"]) & set(checks["get"]["responses"])
    assert document["security"] == [{"bearer": []}]
    assert document["paths"]["/v1/health"]["get"]["security"] == []


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connector")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "connector.crt", directory / "connector.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_the_daemon_serves_https_with_the_given_certificate(
    subscriber: Subscriber, deployment: Deployment, clock: ManualClock, tmp_path: Path
) -> None:
    _vouch(subscriber, deployment, clock.now)
    cert, key = _self_signed(tmp_path)
    server = make_server(subscriber, _access(), (cert, key))
    sock = bind("127.0.0.1", 0)
    assert address(sock, tls=True).startswith("https://127.0.0.1:")
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:

        async def listening() -> bool:
            if serving.done():
                serving.result()  # why it ended
            return server.started

        await eventually(listening, what="uvicorn serving TLS")
        trusted = ssl.create_default_context(cafile=str(cert))
        fields = {"measure": POWER, "subject": new_uscc(), "site": UNIT}
        async with httpx.AsyncClient(base_url=address(sock, tls=True), verify=trusted) as https:
            answer = await https.post("/v1/checks", json=fields, headers=AUTH)
            assert answer.status_code == 200 and answer.json()["status"] == "clear"
        async with httpx.AsyncClient(base_url=address(sock)) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.post("/v1/checks", json=fields, headers=AUTH)
    finally:
        server.should_exit = True
        await serving
        sock.close()
