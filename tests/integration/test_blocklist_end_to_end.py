"""From a filed case to a utility's counter: the registry, its relay, the blocklist
builder and two subscriber connectors on the real broker and Postgres."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.results import Blocked, Clear, Stale
from connectors.subscriber.subscriber import Subscriber
from events.authorities import demo_subscriber
from events.models import CaseDetails
from events.signing import TrustStore
from services.config import Settings
from services.entrypoints.blocklist import run_builder
from services.registry.domain import Step
from services.registry.handlers import STEP_EVENTS, Registry
from services.runtime.devkeys import key_id
from services.runtime.processes import spawn, stop_processes
from tests.support import case_body, eventually

POWER, LOANS = "refuse_power_supply", "refuse_loans"
BOUND = 2.0
WAIT = 60.0
REVOCATION = {
    "court": "孝义市人民法院",
    "decision_no": "(2026)晋1181行初7号",
    "revoked_on": "2026-11-20",
}


@pytest.fixture(scope="module")
def registry_relay(
    settings: Settings, trust: TrustStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "DATABASE_URL": settings.database_url or "",
        "REDLINE_HOME": str(settings.home),
    }
    proc = spawn(
        [sys.executable, "-m", "services.entrypoints.relay"],
        log_path=tmp_path_factory.mktemp("logs") / "relay.log",
        env=env,
    )
    yield
    stop_processes([proc])


def _subscriber(settings: Settings, department: str, measure: str, replica: Path) -> Subscriber:
    authority = demo_subscriber(department)
    return Subscriber(
        SubscriberConfig(
            name=authority.code,
            measures=(measure,),
            bootstrap=settings.kafka_bootstrap or "",
            replica=replica,
            trust_store=settings.trust_store,
            subject_key=settings.subject_key,
            signing_key=settings.home / "keys" / f"{key_id(authority)}.pem",
            signing_key_id=key_id(authority),
            freshness_bound=BOUND,
        )
    )


@pytest.fixture
async def subscribers(
    settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[Subscriber, Subscriber]]:
    power = _subscriber(settings, "power_supply", POWER, tmp_path / "power.sqlite3")
    loans = _subscriber(settings, "banks", LOANS, tmp_path / "loans.sqlite3")
    power.start()
    loans.start()
    yield power, loans
    power.stop()
    loans.stop()


async def test_a_filed_case_blocks_at_the_counter_a_lift_clears_and_a_dead_builder_goes_stale(
    registry_relay: None,
    settings: Settings,
    registry: Registry,
    subscribers: tuple[Subscriber, Subscriber],
) -> None:
    power, loans = subscribers
    stop = asyncio.Event()
    builder = asyncio.create_task(run_builder(settings, stop, heartbeat_every=0.3))
    try:
        body = case_body(("cultivated", "2"))
        subject = body["subject"]["id"]
        case_id = (await registry.file_case(CaseDetails.model_validate(body))).case_id

        async def blocked_at_both() -> bool:
            at_power, at_bank = power.check(POWER, subject), loans.check(LOANS, subject)
            return isinstance(at_power, Blocked) and isinstance(at_bank, Blocked)

        await eventually(blocked_at_both, timeout=WAIT, what="the case at both counters")
        result = power.check(POWER, subject)
        assert isinstance(result, Blocked) and [c.case_id for c in result.cases] == [case_id]
        # Least privilege: each keeps only its own measure's list.
        assert set(power.replica().counts()) == {POWER}
        assert set(loans.replica().counts()) == {LOANS}

        await registry.record_step(
            case_id,
            Step.revocation,
            STEP_EVENTS[Step.revocation][0].model_validate(
                {
                    "court": "孝义市人民法院",
                    "decision_no": "(2026)晋1181行初7号",
                    "revoked_on": "2026-11-20",
                }
            ),
        )

        async def cleared() -> bool:
            return power.check(POWER, subject) == Clear(POWER)

        await eventually(cleared, timeout=WAIT, what="the revocation clears the counter")
    finally:
        stop.set()
        await asyncio.wait_for(builder, 30)

    async def stale() -> bool:
        return isinstance(power.check(POWER, subject), Stale)

    await eventually(stale, timeout=BOUND + 10, what="stale once the builder is gone")
