"""One rule for "did the department answer in time" (services/feedback/status.py), the
one the case view shows and the reports will count by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.config import REPO_ROOT
from services.feedback.status import ResponseRow, ResponseStatus, status
from services.registry.views import response_view
from tests.unit.test_import_arrows import imported_modules

REQUIRED = datetime(2025, 7, 10, 8, tzinfo=UTC)
DUE = REQUIRED + timedelta(hours=72)
NOW = datetime(2025, 7, 20, tzinfo=UTC)


def _row(
    *,
    done: datetime | None = None,
    failed: datetime | None = None,
    due: datetime | None = DUE,
    overdue: datetime | None = None,
) -> ResponseRow:
    return ResponseRow(
        case_id="RL-2025-000001",
        department="power_supply",
        measure="refuse_power_supply",
        action="apply",
        required_at=None if due is None else REQUIRED,
        due_at=due,
        done_at=done,
        failed_at=failed,
        overdue_at=overdue,
    )


@pytest.mark.parametrize(
    ("row", "now", "expected"),
    [
        (_row(done=DUE), NOW, ResponseStatus.done),  # the deadline itself is on time
        (_row(done=DUE + timedelta(seconds=1)), NOW, ResponseStatus.done_late),
        (_row(done=REQUIRED, due=None), NOW, ResponseStatus.done),  # answered before asked
        (_row(done=DUE + timedelta(hours=1), failed=REQUIRED), NOW, ResponseStatus.done_late),
        (_row(failed=REQUIRED + timedelta(hours=1)), NOW, ResponseStatus.failed),
        (_row(), NOW, ResponseStatus.overdue),  # reports' old "unanswered"
        (_row(), DUE, ResponseStatus.pending),  # not yet past the deadline
        (_row(), DUE + timedelta(microseconds=1), ResponseStatus.overdue),
        (_row(overdue=DUE), DUE - timedelta(hours=1), ResponseStatus.overdue),  # claimed
        (_row(due=None), NOW, ResponseStatus.pending),  # no deadline read yet
    ],
)
def test_each_response_has_one_status(
    row: ResponseRow, now: datetime, expected: ResponseStatus
) -> None:
    assert status(row, now) is expected


def test_the_case_view_shows_the_shared_status_in_the_apis_words() -> None:
    shown = response_view(_row(done=DUE + timedelta(hours=1)), NOW)
    assert shown.status is ResponseStatus.done_late
    assert shown.model_dump(mode="json")["status"] == "done_late"
    assert {s.value for s in ResponseStatus} == {
        "done",
        "done_late",
        "failed",
        "overdue",
        "pending",
    }


def test_the_rule_is_pure_so_any_reader_may_take_it() -> None:
    imported = imported_modules(REPO_ROOT / "services/feedback/status.py")
    assert imported <= {"__future__", "dataclasses", "datetime", "enum"}
