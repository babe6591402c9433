"""Set-up that several unit test modules share, kept in one place so that each test
module says only what its tests are about."""

from __future__ import annotations

import logging
from typing import Any

from connectors.subscriber.results import Blocked, CheckResult
from events.models import Site
from tests.support import new_unit_code

# The subscriber the connector's tests provision (tests/unit/conftest.py `deployment`).
SUBSCRIBER = "power_supply_test_subscriber"
POWER = "refuse_power_supply"
# The premises every power block of those tests is held at, and every check asks about.
UNIT = new_unit_code()
PREMISES = Site(location="孝义市兑镇镇东村北侧厂房", real_estate_unit=UNIT)


def cases_behind(answer: CheckResult) -> list[str]:
    """The ids of the cases behind a connector's Blocked answer; any other answer fails."""
    assert isinstance(answer, Blocked), answer
    return [case.case_id for case in answer.cases]


def penalty_data(**changes: Any) -> dict[str, Any]:
    """A case.penalty_decided body as version 1 carried it (no decisions), as changed."""
    return {
        "case_id": "C1",
        "decision_no": "D",
        "decided_on": "2024-01-02",
        "fine_yuan": "1000",
        "summary": "s",
        **changes,
    }


def access_record(client: str, target: str) -> logging.LogRecord:
    """The log record uvicorn's access log makes of a 200 answer to `GET target`."""
    return logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (client, "GET", target, "1.1", 200),
        None,
    )
