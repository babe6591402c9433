"""Pure audit chain rules: each entry's hash covers its content and the hash before it, so
an edited entry breaks its own hash and a deleted one breaks the link after it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.envelope import canonical_json

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """Who did what, to which case, when, why, and on which legal basis."""

    actor: str
    action: str
    case_id: str
    reason: str
    legal_basis: str
    data: dict[str, Any]


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: datetime
    entry: AuditEntry
    prev_hash: str
    hash: str


def chain_hash(prev_hash: str, seq: int, at: datetime, entry: AuditEntry) -> str:
    content = {
        "seq": seq,
        "at": at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "case_id": entry.case_id,
        "reason": entry.reason,
        "legal_basis": entry.legal_basis,
        "data": entry.data,
    }
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(content)).hexdigest()


def verify_chain(rows: Iterable[AuditRow]) -> list[str]:
    """Every break in the chain, in order; empty when the trail is whole."""
    problems: list[str] = []
    expected_prev, expected_seq = GENESIS, 1
    for row in rows:
        if row.seq != expected_seq:
            problems.append(f"entries {expected_seq}..{row.seq - 1} are missing (deleted)")
        if row.prev_hash != expected_prev:
            problems.append(f"entry {row.seq} does not follow the entry before it")
        if chain_hash(row.prev_hash, row.seq, row.at, row.entry) != row.hash:
            problems.append(f"entry {row.seq} was changed after it was written")
        expected_prev, expected_seq = row.hash, row.seq + 1
    return problems
