"""The central check fails closed: it answers only while the blocklist builder has vouched
for its tables within the bound, and says stale (with what the tables held) otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.catalogue import load_catalogue
from events.privacy import SubjectHasher
from services.blocklist.domain import ActiveBlock, ListedCase
from services.blocklist.queries import CentralChecks, ListsAreStale, Vouched
from services.errors import InvalidInput
from tests.support import new_uscc

LOANS = "refuse_loans"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
HASHER = SubjectHasher(b"k" * 32)


class FakeStore:
    """The builder's tables: one blocked subject, and a vouch of a given age."""

    def __init__(self, blocked: str, age: float | None) -> None:
        self.blocked_hash = HASHER.hash_id(blocked)
        self.age = age
        self.vouch_reads = 0

    async def active(self, measure: str, subject_hash: str) -> list[ActiveBlock]:
        if subject_hash != self.blocked_hash:
            return []
        case = ListedCase("RL-2026-000001", subject_hash, "organization", "孝义市某***公司")
        return [ActiveBlock(measure, "banks", case.case_id, "basis", NOW, case)]

    async def vouched(self) -> Vouched | None:
        self.vouch_reads += 1
        if self.age is None:
            return None
        return Vouched(NOW - timedelta(seconds=self.age), self.age)

    async def ping(self) -> None:
        return None


def _checks(store: FakeStore, now: list[float]) -> CentralChecks:
    return CentralChecks(
        store,
        HASHER,
        load_catalogue(),
        lambda: NOW,
        freshness_bound=30.0,
        monotonic=lambda: now[0],
    )


async def test_never_vouched_is_stale_never_clear() -> None:
    blocked = new_uscc()
    checks = _checks(FakeStore(blocked, age=None), [0.0])
    with pytest.raises(ListsAreStale) as stale:
        await checks.check(LOANS, new_uscc())
    answer = stale.value.answer
    assert answer.status == "stale" and answer.watermark is None and answer.age_seconds is None
    assert "never vouched" in answer.reason and answer.last_known.status == "clear"
    with pytest.raises(ListsAreStale) as still_blocked:
        await checks.check(LOANS, blocked)
    assert still_blocked.value.answer.last_known.status == "blocked"  # for a fallback policy


async def test_a_fresh_vouch_answers_and_an_old_one_is_stale() -> None:
    blocked, now = new_uscc(), [0.0]
    store = FakeStore(blocked, age=29.5)
    checks = _checks(store, now)
    assert (await checks.check(LOANS, new_uscc())).status == "clear"
    assert (await checks.check(LOANS, blocked)).status == "blocked"
    assert store.vouch_reads == 1  # read once a second, not per check
    now[0] += 0.9
    with pytest.raises(ListsAreStale) as stale:  # the cached vouch ages with the clock
        await checks.check(LOANS, new_uscc())
    assert stale.value.answer.age_seconds == pytest.approx(30.4)
    assert "bound 30.0 s" in stale.value.answer.reason
    assert store.vouch_reads == 1
    store.age, now[0] = 1.0, now[0] + 1.0  # the builder vouched again
    assert (await checks.check(LOANS, new_uscc())).status == "clear"
    assert store.vouch_reads == 2


async def test_bad_input_is_refused_before_freshness_is_asked() -> None:
    store = FakeStore(new_uscc(), age=None)
    with pytest.raises(InvalidInput) as refused:
        await _checks(store, [0.0]).check(LOANS, "not-an-id")
    assert refused.value.field == "subject" and store.vouch_reads == 0
