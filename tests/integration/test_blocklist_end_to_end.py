"""From a filed case to a utility's counter: the registry, its relay, the blocklist
builder and two subscriber connectors on the real broker and Postgres. Power is refused
at the premises the case is about, and only there; the bank refuses the subject a loan."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.errors import InvalidInput
from connectors.subscriber.results import Blocked, Clear, Stale
from connectors.subscriber.subscriber import Subscriber
from events.authorities import demo_subscriber
from events.models import CaseDetails, CorrectionDetails
from events.signing import TrustStore
from services.config import Settings
from services.entrypoints.blocklist import run_builder
from services.registry.domain import Step
from services.registry.handlers import STEP_EVENTS, Registry
from services.runtime.devkeys import key_id
from services.runtime.processes import spawn, stop_processes
from tests.integration.connectors import started
from tests.support import business_premises_facts, case_body, eventually, new_unit_code, service_env

# Longer than the suite's 30 s per test: registry, departments, builder and subscribers end to end.
pytestmark = pytest.mark.timeout(120)

POWER, LOANS = "refuse_power_supply", "refuse_loans"
HOME = "孝义市梧桐镇西村12号"  # the subject's lawful home: supplied whatever its case elsewhere
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
    env = service_env(settings)
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
    with started(power), started(loans):
        yield power, loans


async def fresh(
    subscriber: Subscriber, measure: str, subject: str, site: str | None = None
) -> Blocked | Clear:
    """The answer once the replica vouches for now: with a 2 s bound on a busy machine, a
    heartbeat may come late, and a stale answer says nothing either way."""
    found: list[Blocked | Clear] = []

    async def vouched() -> bool:
        result = subscriber.check(measure, subject, site)
        if isinstance(result, Stale):
            return False
        found.append(result)
        return True

    await eventually(vouched, timeout=WAIT, what=f"a fresh answer from {measure}")
    return found[-1]


@dataclass
class Counters:
    """The power and bank counters, with the registry's relay and the builder running."""

    power: Subscriber
    loans: Subscriber
    builder: asyncio.Task[None]
    stop: asyncio.Event

    async def stop_builder(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.builder, 30)


@pytest.fixture
async def counters(
    registry_relay: None, settings: Settings, subscribers: tuple[Subscriber, Subscriber]
) -> AsyncIterator[Counters]:
    stop = asyncio.Event()
    builder = asyncio.create_task(run_builder(settings, stop, heartbeat_every=0.3))
    running = Counters(*subscribers, builder, stop)
    try:
        yield running
    finally:
        await running.stop_builder()


async def test_power_is_refused_at_the_premises_only_a_bank_refuses_the_loan_and_a_lift_clears(
    counters: Counters, registry: Registry
) -> None:
    power, loans = counters.power, counters.loans
    unit = new_unit_code()
    body = case_body(("cultivated", "2"))
    body["facts"] = business_premises_facts(
        site={"location": "孝义市兑镇镇东村北侧厂房", "real_estate_unit": unit}
    )
    subject = body["subject"]["id"]
    filed = await registry.file_case(CaseDetails.model_validate(body))
    assert {POWER, LOANS} <= {d.measure for d in filed.starts}

    async def blocked_at_both() -> bool:
        at_power, at_bank = power.check(POWER, subject, unit), loans.check(LOANS, subject)
        return isinstance(at_power, Blocked) and isinstance(at_bank, Blocked)

    await eventually(blocked_at_both, timeout=WAIT, what="the case at both counters")
    result = await fresh(power, POWER, subject, unit)
    assert isinstance(result, Blocked) and [c.case_id for c in result.cases] == [filed.case_id]
    assert "business_premises" in result.cases[0].facts
    # The premises by its address too; the subject's home is supplied.
    assert isinstance(await fresh(power, POWER, subject, " 孝义市兑镇镇东村北侧厂房"), Blocked)
    assert await fresh(power, POWER, subject, HOME) == Clear(POWER, blocked_elsewhere=True)
    # The bank refuses the subject a loan wherever it asks.
    assert isinstance(await fresh(loans, LOANS, subject, HOME), Blocked)
    with pytest.raises(InvalidInput) as refused:
        power.check(POWER, subject)
    assert refused.value.field == "site"
    # Least privilege: each keeps only its own measure's list.
    assert set(power.replica().counts()) == {POWER}
    assert set(loans.replica().counts()) == {LOANS}

    moved_to = new_unit_code()
    facts = business_premises_facts(
        site={"location": "孝义市兑镇镇南村厂房", "real_estate_unit": moved_to}
    )
    correction = CorrectionDetails.model_validate(
        {"parcels": body["parcels"], "facts": facts, "reason": "the survey was corrected"}
    )
    await registry.record_step(filed.case_id, Step.correction, correction)

    async def moved() -> bool:
        return isinstance(power.check(POWER, subject, moved_to), Blocked)

    await eventually(moved, timeout=WAIT, what="the block at the corrected site")
    assert await fresh(power, POWER, subject, unit) == Clear(POWER, blocked_elsewhere=True)

    await registry.record_step(
        filed.case_id,
        Step.revocation,
        STEP_EVENTS[Step.revocation][0].model_validate(REVOCATION),
    )

    async def cleared() -> bool:
        return power.check(POWER, subject, moved_to) == Clear(POWER)

    await eventually(cleared, timeout=WAIT, what="the revocation clears the counter")

    async def loan_cleared() -> bool:
        return loans.check(LOANS, subject) == Clear(LOANS)

    await eventually(loan_cleared, timeout=WAIT, what="the revocation clears the bank")
    await counters.stop_builder()

    async def stale() -> bool:
        return isinstance(power.check(POWER, subject, moved_to), Stale)

    await eventually(stale, timeout=BOUND + 10, what="stale once the builder is gone")


async def test_an_unused_land_case_is_refused_nothing_at_the_counter(
    counters: Counters, registry: Registry
) -> None:
    """0.5 mu of unused land is no farmland case: nobody refuses that subject anything."""
    power, loans = counters.power, counters.loans
    unit = new_unit_code()
    unused = case_body(
        ("unused", "0.5"),
        facts=business_premises_facts(site={"location": "某村荒地", "real_estate_unit": unit}),
    )
    marker = case_body(("cultivated", "1"))
    marker["subject"]["id"] = unused["subject"]["id"]  # the same subject, a farmland case
    filed = await registry.file_case(CaseDetails.model_validate(unused))
    assert filed.starts == []
    await registry.file_case(CaseDetails.model_validate(marker))
    subject = unused["subject"]["id"]

    async def marker_listed() -> bool:
        return isinstance(loans.check(LOANS, subject), Blocked)

    await eventually(marker_listed, timeout=WAIT, what="the farmland case at the bank")
    # The bank holds only the farmland case; at the unused land's unit, power is clear.
    blocked = await fresh(loans, LOANS, subject)
    assert isinstance(blocked, Blocked) and filed.case_id not in {
        case.case_id for case in blocked.cases
    }

    async def held_elsewhere() -> bool:
        return power.check(POWER, subject, unit) == Clear(POWER, blocked_elsewhere=True)

    # Blocked only at the farmland case's premises: at the unused land, supplied.
    await eventually(held_elsewhere, timeout=WAIT, what="power clear at the unused land")
