"""The central check (GET /v1/checks) on the real broker, Postgres and blocklist builder,
attacked as the security review did (issue #18, items 3 and 8):

- a power company's token asks for the discipline and criminal referrals and for the
  banks' loan list: refused (403) naming the measure, with nothing about the subject;
- a burst beyond its rate: refused (429) with Retry-After, other tokens unaffected;
- the builder never ran, or stopped: the check answers stale (503), never "clear".

Each test has a database of its own: its builder's vouch is the only one there.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.models import Site
from events.signing import TrustStore
from services.access import TokenStore, dev_token, ensure_dev_tokens
from services.bootstrap import central_checks
from services.config import Settings
from services.departments.queries import DepartmentQueries
from services.entrypoints.api import create_app
from services.entrypoints.blocklist import run_builder
from services.registry.handlers import Registry
from tests.conftest import Stack, create_database
from tests.integration.bureau import Bureau
from tests.support import business_premises_facts, case_body, eventually, new_unit_code, new_uscc

# Longer than the suite's 30 s per test: a builder stopped until the check turns stale.
pytestmark = pytest.mark.timeout(120)

POWER, LOANS = "refuse_power_supply", "refuse_loans"
# Government departments' measures: no utility or bank may check them.
GOVERNMENT = ("publish_credit_record", "halt_transport_works")
WAIT = 60.0


class Builder:
    """The blocklist builder as a task this test starts and stops."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(
            run_builder(self.settings, self.stop_event, heartbeat_every=0.3)
        )

    async def stop(self) -> None:
        if self.task is not None:
            self.stop_event.set()
            await asyncio.wait_for(self.task, 30)
            self.task = None


@pytest.fixture
async def lists(stack: Stack, settings: Settings, trust: TrustStore, tmp_path: Path) -> Settings:
    """A database of this test's own, and tokens where the subscriber is a power company
    granted only the power list (the dev subject and signing keys are the session's)."""
    ensure_dev_tokens(tmp_path, ["power_supply", "banks"], subscriber_measures=[POWER])
    return dataclasses.replace(
        settings.with_endpoints(stack.kafka, await create_database(stack)),
        api_tokens_path=tmp_path / "tokens.yaml",
    )


@pytest.fixture
async def builder(lists: Settings) -> AsyncIterator[Builder]:
    running = Builder(lists)
    try:
        yield running
    finally:
        await running.stop()


class Caller:
    """The registry API (the real app, in process) as each token calls it."""

    def __init__(self, http: httpx.AsyncClient, home: Path) -> None:
        self.http = http
        self.home = home

    async def check(self, who: str, measure: str, subject: str, **more: str) -> httpx.Response:
        return await self.http.get(
            "/v1/checks",
            params={"measure": measure, "subject": subject, **more},
            headers={"Authorization": f"Bearer {dev_token(self.home, who)}"},
        )


@pytest.fixture
async def caller_for(
    lists: Settings, registry: Registry, queries: DepartmentQueries
) -> AsyncIterator[Callable[..., Awaitable[Caller]]]:
    """Build the app over `lists` with the given Settings changes (the check's rate and
    freshness bound); its checks read this test's database."""
    async with AsyncExitStack() as opened:

        async def make(**changes: Any) -> Caller:
            configured = dataclasses.replace(lists, **changes)
            checks = await opened.enter_async_context(central_checks(configured))
            tokens = TokenStore.load(configured.api_tokens)
            app = create_app(configured, registry, queries, checks, tokens)
            opened.push_async_callback(app.state.health.close)
            http = await opened.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r")
            )
            return Caller(http, configured.api_tokens.parent)

        yield make


async def _file_power_case(bureau: Bureau) -> tuple[str, str]:
    """A case at a unit of its own whose filing starts the power and loan lists."""
    unit = new_unit_code()
    body = case_body(("cultivated", "12"))  # over the 10 mu accountability threshold
    body["facts"] = business_premises_facts(
        site=Site(location="孝义市兑镇镇东村厂房", real_estate_unit=unit).model_dump(mode="json")
    )
    await bureau.file(body)
    return body["subject"]["id"], unit


async def _until_answered(caller: Caller, who: str, measure: str, subject: str, **more: str) -> str:
    """Poll until the check answers (the builder caught up and vouched); its status."""
    answers: list[httpx.Response] = []

    async def answered() -> bool:
        answers.append(await caller.check(who, measure, subject, **more))
        return answers[-1].status_code == 200

    await eventually(answered, timeout=WAIT, what=f"{who}'s check of {measure} answered")
    status: str = answers[-1].json()["status"]
    return status


MakeCaller = Callable[..., Awaitable[Caller]]


async def test_before_the_builder_ever_ran_a_check_is_stale_never_clear(
    lists: Settings, caller_for: MakeCaller
) -> None:
    caller = await caller_for()
    for who, measure, more in (
        ("operator", LOANS, {}),
        ("department-power_supply", POWER, {"site": new_unit_code()}),
        ("subscriber", POWER, {"site": new_unit_code()}),
    ):
        answer = await caller.check(who, measure, new_uscc(), **more)
        assert answer.status_code == 503, (who, answer.text)
        body = answer.json()
        assert body["status"] == "stale" and body["watermark"] is None
        assert body["reason"] == "the blocklist builder has never vouched for its tables"
        assert body["last_known"]["status"] == "clear"  # what the tables hold, for a policy
    # a measure the token may not check is refused first: stale says nothing either way
    refused = await caller.check("department-power_supply", LOANS, new_uscc())
    assert refused.status_code == 403


async def test_a_power_company_checks_its_own_measure_and_nothing_else(
    builder: Builder, bureau: Bureau, caller_for: MakeCaller
) -> None:
    builder.start()
    caller = await caller_for()
    subject, unit = await _file_power_case(bureau)
    # Allowed checks still answer, from the real builder's tables.
    await eventually(
        lambda: _is(caller, "department-power_supply", subject, unit, 200, "blocked"),
        timeout=WAIT,
        what="the power department sees the block",
    )
    assert await _is(caller, "subscriber", subject, unit, 200, "blocked")
    assert (await caller.check("department-banks", LOANS, subject)).json()["status"] == "blocked"
    for measure in GOVERNMENT:  # operators keep access to every measure
        assert (await caller.check("operator", measure, subject)).status_code == 200

    # The attack: the power company's tokens ask for what is not theirs.
    for who, measure, reason in (
        ("department-power_supply", LOANS, "department power_supply may check only its own"),
        *(
            ("department-power_supply", m, "department power_supply may check only its own")
            for m in GOVERNMENT
        ),
        ("subscriber", LOANS, "subscriber subscriber is not granted it (granted: " + POWER),
        *(("subscriber", m, "is not granted it") for m in GOVERNMENT),
    ):
        answer = await caller.check(who, measure, subject)
        assert answer.status_code == 403, (who, measure, answer.text)
        body = answer.json()
        assert body["errors"][0]["field"] == "measure"
        assert body["error"].startswith(f"measure {measure}: ") and reason in body["error"]
        assert "status" not in body and "cases" not in body  # nothing about the subject


async def test_a_burst_beyond_the_rate_is_refused_with_retry_after(
    builder: Builder, caller_for: MakeCaller
) -> None:
    builder.start()
    caller = await caller_for(check_rate=1.0, check_burst=5)
    subject = new_uscc()
    assert await _until_answered(caller, "operator", LOANS, subject) == "clear"
    began = asyncio.get_running_loop().time()
    burst = await asyncio.gather(
        *(caller.check("department-banks", LOANS, new_uscc()) for _ in range(20))
    )
    took = asyncio.get_running_loop().time() - began
    answered = [a for a in burst if a.status_code == 200]
    limited = [a for a in burst if a.status_code == 429]
    assert len(answered) + len(limited) == len(burst)
    assert 5 <= len(answered) <= 5 + int(took) + 1  # the burst, then one a second
    assert limited, "a burst of 20 past a burst limit of 5 was all answered"
    for answer in limited:
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.json()["error"].startswith("too many checks from department-banks")
    assert {a.json()["status"] for a in answered} == {"clear"}  # allowed checks still answer
    # Each token has its own bucket: another caller is answered meanwhile.
    assert (
        await caller.check("department-power_supply", POWER, subject, site="x")
    ).status_code == (200)


async def test_a_stopped_builder_makes_the_check_stale_not_clear(
    builder: Builder, bureau: Bureau, caller_for: MakeCaller
) -> None:
    builder.start()
    caller = await caller_for(check_freshness_bound=2.0)
    subject, unit = await _file_power_case(bureau)
    await eventually(
        lambda: _is(caller, "subscriber", subject, unit, 200, "blocked"),
        timeout=WAIT,
        what="blocked, fresh",
    )
    stranger = new_uscc()
    assert (await caller.check("operator", LOANS, stranger)).json()["status"] == "clear"

    await builder.stop()
    seen: list[tuple[int, str]] = []

    async def stale() -> bool:
        answer = await caller.check("operator", LOANS, stranger)
        seen.append((answer.status_code, answer.json()["status"]))
        return answer.status_code == 503

    await eventually(stale, timeout=WAIT, what="stale once the builder stopped")
    assert set(seen) <= {(200, "clear"), (503, "stale")}
    body = (await caller.check("operator", LOANS, stranger)).json()
    assert body["status"] == "stale" and body["bound_seconds"] == 2.0
    assert body["age_seconds"] > 2.0 and body["watermark"] is not None
    blocked = await caller.check("subscriber", POWER, subject, site=unit)
    assert blocked.status_code == 503
    assert blocked.json()["last_known"]["status"] == "blocked"

    builder.start()  # back, caught up: it vouches again
    await eventually(
        lambda: _is(caller, "subscriber", subject, unit, 200, "blocked"),
        timeout=WAIT,
        what="fresh again",
    )


async def _is(caller: Caller, who: str, subject: str, unit: str, code: int, status: str) -> bool:
    """Whether `who`'s power check of `subject` at `unit` answers `code` with `status`."""
    answer = await caller.check(who, POWER, subject, site=unit)
    return answer.status_code == code and answer.json()["status"] == status
