"""`redline demo` into the real registry: a seeded run files realistic mixes, most small
cases start only what their facts call for, and some end in land procedures or
confiscation."""

from __future__ import annotations

import pytest

from demo import run_demo
from services.registry.domain import CaseStatus, Step
from services.registry.handlers import Registry

# Longer than the suite's 30 s per test: the demo feed against the whole system.
pytestmark = pytest.mark.timeout(120)

SUPPLY = {"refuse_water_supply", "refuse_power_supply", "refuse_gas_supply", "refuse_loans"}


async def test_a_seeded_demo_run_files_cases_that_start_only_what_their_facts_call_for(
    registry: Registry,
) -> None:
    lines: list[str] = []
    stats = await run_demo(registry, cases=80, interval=0, seed=16, on_line=lines.append)
    assert stats.filed == 80
    assert stats.started_nothing > 0
    assert stats.measures_started > stats.filed  # but far fewer than every measure each
    assert stats.steps[Step.land_procedures] > 0
    assert stats.steps[Step.confiscation] > 0
    assert any("starts none" in line for line in lines)
    assert any(line.startswith("legalised ") for line in lines)
    assert any(line.startswith("confiscated ") for line in lines)

    case_ids = [line.split()[1] for line in lines if line.startswith("filed ")]
    statuses: set[CaseStatus] = set()
    for case_id in case_ids:
        case = await registry.get_case(case_id)
        assert case.facts is not None
        statuses.add(case.status)
        started = {m.measure for m in case.measures if m.started_by == "filing"}
        if started & SUPPLY:
            premises = case.facts.building_use == "business_premises"
            assert case.facts.project is not None or premises, case_id
        if case.status is CaseStatus.confiscated:
            assert "supervise_confiscated_property" in {m.measure for m in case.measures}
    assert {CaseStatus.confiscated, CaseStatus.closed} <= statuses

    again = await run_demo(registry, cases=80, interval=0, seed=16, on_line=lambda _: None)
    assert again == stats  # the same keys: the first answers replayed, nothing filed twice
