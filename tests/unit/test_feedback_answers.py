"""How the tracker reads a department's acknowledgement as the answer it records: which
action it answers, as of when, and with what reference or error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.envelope import new_event
from events.models import MeasureApplied, MeasureFailed, MeasureLifted
from services.feedback.handlers import response_to

DONE = datetime(2026, 10, 12, 9, tzinfo=UTC)  # when the department says it acted
SENT = DONE + timedelta(minutes=5)  # when its acknowledgement was sent
ABOUT = {
    "case_id": "T2026-0001",
    "department": "power_supply",
    "measure": "refuse_power_supply",
    "caused_by": "8a0f3c8e-5d1f-4b8e-9a57-000000000001",
}
Answer = MeasureApplied | MeasureLifted | MeasureFailed
# Each acknowledgement, and the answer it gives: (action, as of, reference, error).
ANSWERS: dict[str, tuple[Answer, tuple[str, datetime, str | None, str | None]]] = {
    "applied": (
        MeasureApplied(reference="PS/2026/7", applied_at=DONE, **ABOUT),
        ("apply", DONE, "PS/2026/7", None),
    ),
    "lifted": (
        MeasureLifted(reason="revoked", lifted_at=DONE, **ABOUT),
        ("lift", DONE, None, None),
    ),
    "failed": (
        MeasureFailed(error="no meter at the site", **ABOUT),
        ("apply", SENT, None, "no meter at the site"),
    ),
}


@pytest.mark.parametrize("kind", sorted(ANSWERS))
def test_an_acknowledgement_is_recorded_as_the_answer_it_gives(kind: str) -> None:
    answer, expected = ANSWERS[kind]
    envelope = new_event(answer, source="/authorities/power_supply", time=SENT)
    response = response_to(envelope, answer)
    assert (response.action, response.at, response.reference, response.error) == expected
    assert (response.case_id, response.department, response.measure) == (
        ABOUT["case_id"],
        ABOUT["department"],
        ABOUT["measure"],
    )
    assert (response.event_id, response.answers) == (envelope.id, ABOUT["caused_by"])
