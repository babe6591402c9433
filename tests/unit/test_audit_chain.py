"""The audit chain: an edited entry breaks its hash, a deleted one breaks the link."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from services.audit.domain import GENESIS, AuditEntry, AuditRow, chain_hash, verify_chain

AT = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _chain(count: int) -> list[AuditRow]:
    rows, prev = [], GENESIS
    for seq in range(1, count + 1):
        entry = AuditEntry("natural_resources", "filing", f"RL-{seq}", "case.filed", "", {"n": seq})
        digest = chain_hash(prev, seq, AT, entry)
        rows.append(AuditRow(seq, AT, entry, prev, digest))
        prev = digest
    return rows


def test_a_whole_chain_verifies() -> None:
    assert verify_chain(_chain(3)) == []
    assert verify_chain([]) == []


def test_an_edited_entry_is_named() -> None:
    rows = _chain(3)
    edited = dataclasses.replace(rows[1].entry, reason="nothing to see")
    rows[1] = dataclasses.replace(rows[1], entry=edited)
    assert verify_chain(rows) == ["entry 2 was changed after it was written"]


def test_a_rehashed_edit_still_breaks_the_next_link() -> None:
    rows = _chain(3)
    edited = dataclasses.replace(rows[1].entry, legal_basis="forged")
    forged = chain_hash(rows[1].prev_hash, 2, AT, edited)
    rows[1] = dataclasses.replace(rows[1], entry=edited, hash=forged)
    assert verify_chain(rows) == ["entry 3 does not follow the entry before it"]


def test_a_deleted_entry_is_named() -> None:
    rows = _chain(4)
    del rows[1]
    assert verify_chain(rows) == [
        "entries 2..2 are missing (deleted)",
        "entry 3 does not follow the entry before it",
    ]
