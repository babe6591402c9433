"""/healthz is open to anyone, so it must cost nothing per request: one broker client kept
between probes, each probe run at most once per interval however many ask at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from services.entrypoints import health_routes
from services.entrypoints.health_routes import BrokerProbe, CachedProbe


class FakeAdmin:
    """Stands in for AIOKafkaAdminClient, counting what the probe does with it."""

    created = 0
    listed = 0
    closed = 0
    failing = False

    def __init__(self, **options: Any) -> None:
        type(self).created += 1
        self.options = options

    async def start(self) -> None:
        await asyncio.sleep(0)

    async def list_topics(self) -> list[str]:
        await asyncio.sleep(0.01)  # long enough for concurrent callers to pile up
        type(self).listed += 1
        if type(self).failing:
            raise KafkaConnectionError("broker gone")
        return ["redline.violations.v1"]

    async def close(self) -> None:
        type(self).closed += 1


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> type[FakeAdmin]:
    counted = type("CountedAdmin", (FakeAdmin,), {})
    monkeypatch.setattr(health_routes, "AIOKafkaAdminClient", counted)
    return counted


async def test_many_health_probes_create_one_broker_client_and_probe_once_per_interval(
    admin: type[FakeAdmin],
) -> None:
    now = [0.0]
    probe = CachedProbe(BrokerProbe("127.0.0.1:9", None), ttl=5.0, monotonic=lambda: now[0])
    answers = await asyncio.gather(*(probe() for _ in range(200)))
    assert set(answers) == {"ok"}
    assert (admin.created, admin.listed) == (1, 1)  # 200 callers, one client, one probe
    now[0] += 4.9
    assert await probe() == "ok" and admin.listed == 1  # cached within the interval
    now[0] += 0.2
    assert await probe() == "ok"
    assert (admin.created, admin.listed, admin.closed) == (1, 2, 0)  # the same client again


async def test_a_failed_probe_drops_its_client_and_the_next_one_connects_again(
    admin: type[FakeAdmin],
) -> None:
    now = [0.0]
    probe = CachedProbe(BrokerProbe("127.0.0.1:9", None), ttl=5.0, monotonic=lambda: now[0])
    admin.failing = True
    answer = await probe()
    assert answer == "unreachable: KafkaConnectionError"  # no addresses for an open endpoint
    assert (admin.created, admin.closed) == (1, 1)
    admin.failing = False
    now[0] += 5
    assert await probe() == "ok"
    assert admin.created == 2


async def test_the_database_probe_is_run_once_per_interval() -> None:
    runs = 0

    async def ping() -> str:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        return "ok"

    now = [0.0]
    probe = CachedProbe(ping, ttl=1.0, monotonic=lambda: now[0])
    assert set(await asyncio.gather(*(probe() for _ in range(100)))) == {"ok"}
    assert runs == 1
    now[0] += 1.0
    await probe()
    assert runs == 2
