"""The department's guard against committing old offsets into a broker that came back
empty: a commit waits while the cluster cannot be told, and goes ahead on the same one."""

from __future__ import annotations

import subprocess
import sys

from services.adapters.same_broker import EXIT_BROKER_REPLACED, SameBroker
from services.errors import BrokerError


async def test_the_same_cluster_lets_a_commit_through() -> None:
    async def cluster() -> str:
        return "cluster-a"

    assert await SameBroker("cluster-a", cluster, "department x").check() is True


async def test_a_broker_that_cannot_be_reached_holds_the_commit_back() -> None:
    async def unreachable() -> str:
        raise BrokerError("cannot reach the broker")

    assert await SameBroker("cluster-a", unreachable, "department x").check() is False


def test_another_cluster_ends_the_process_at_once_with_its_own_code() -> None:
    program = (
        "import asyncio\n"
        "from services.adapters.same_broker import SameBroker\n"
        "async def other() -> str:\n"
        "    return 'cluster-b'\n"
        "asyncio.run(SameBroker('cluster-a', other, 'department x').check())\n"
        "print('carried on')\n"
    )
    ended = subprocess.run(
        [sys.executable, "-c", program], check=False, capture_output=True, text=True, timeout=60
    )
    assert ended.returncode == EXIT_BROKER_REPLACED
    assert "carried on" not in ended.stdout
    assert "cluster-b, not cluster-a" in ended.stderr
