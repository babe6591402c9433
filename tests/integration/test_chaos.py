"""The fault suite's small form, run by `make test` (and so by CI): the whole system under
kill -9s, a broker that restarts empty, Postgres stopped and the broker paused, then every
department's blocks and every subscriber's replica compared with the registry.
`make chaos` runs the full plan."""

from __future__ import annotations

import json

import pytest

from tests.chaos.suite import PLANS, run

# Longer than the suite's 30 s per test: the fault plan: kills, broker restarts, Postgres stopped,
# while cases flow.
pytestmark = pytest.mark.timeout(900)


@pytest.mark.timeout(900)  # the whole system, six faults, then convergence
async def test_faults_lose_nothing_and_double_nothing() -> None:
    outcome = await run("small")
    summary = outcome.summary()
    print(json.dumps(summary, indent=2, ensure_ascii=False))

    assert outcome.faults == [fault.name for fault in PLANS["small"]]
    assert outcome.cases_accepted > 0 and outcome.revocations_accepted > 0
    assert outcome.departments.expected >= outcome.cases_accepted
    assert (outcome.lost, outcome.doubled, outcome.stray) == (0, 0, 0), summary["examples"]
