"""Audit checkpoints, pure: signed by the registry's key alone, compared with the chain,
and never re-signed over a shorter or rewritten history."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime

from events.signing import Signer, TrustedKey, TrustStore
from services.audit.anchor import (
    Checkpoint,
    Head,
    anchor_problems,
    checkpoint_due,
    latest_checkpoints,
    sign_checkpoint,
)
from services.audit.domain import GENESIS, AuditEntry, AuditRow, chain_hash

AT = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
REGISTRY = Signer.generate("natural_resources-test")
DEPARTMENT = Signer.generate("banks-test")
TRUST = TrustStore(
    [
        TrustedKey(
            REGISTRY.key_id,
            "natural_resources",
            "/authorities/natural_resources",
            REGISTRY.public_key_b64(),
            ("redline.case.*",),
        ),
        TrustedKey(
            DEPARTMENT.key_id,
            "banks",
            "/authorities/banks",
            DEPARTMENT.public_key_b64(),
            ("redline.measure.*",),
        ),
    ]
)


def _chain(count: int) -> list[AuditRow]:
    rows, prev = [], GENESIS
    for seq in range(1, count + 1):
        entry = AuditEntry("natural_resources", "filing", f"RL-{seq}", "case.filed", "", {})
        digest = chain_hash(prev, seq, AT, entry)
        rows.append(AuditRow(seq, AT, entry, prev, digest))
        prev = digest
    return rows


def _checkpoint(
    rows: list[AuditRow], signer: Signer = REGISTRY, database: str = "redline"
) -> Checkpoint:
    head = Head(rows[-1].seq, rows[-1].hash)
    return sign_checkpoint(signer, database, "public", head, AT.isoformat())


def test_the_latest_valid_checkpoint_counts_and_forgeries_are_refused() -> None:
    rows = _chain(5)
    older, newer = _checkpoint(rows[:3]), _checkpoint(rows)
    by_department = _checkpoint(rows, DEPARTMENT)
    tampered = dataclasses.replace(newer, seq=9)
    short_signature = dataclasses.replace(newer, signature=base64.b64encode(b"x" * 10).decode())
    other_database = _checkpoint(rows[:4], database="elsewhere")
    values = [
        older.encode(),
        newer.encode(),
        by_department.encode(),
        tampered.encode(),
        short_signature.encode(),
        other_database.encode(),
        b"garbage",
        None,
    ]
    found, refused = latest_checkpoints(values, TRUST, "redline")
    assert found == {"public": newer}
    assert len(refused) == 5
    assert any("only natural_resources signs checkpoints" in r for r in refused)
    assert sum("bad signature" in r for r in refused) == 2


def test_a_truncated_or_rewritten_tail_is_named() -> None:
    rows = _chain(5)
    checkpoint = _checkpoint(rows)
    assert anchor_problems(rows, checkpoint) == []
    assert anchor_problems([*rows, *_chain(6)[5:]], checkpoint) == []  # grown since: fine
    (problem,) = anchor_problems(rows[:2], checkpoint)
    assert problem.startswith("entries 3..5 are missing (truncated tail)")
    (gone,) = anchor_problems([], checkpoint)
    assert gone.startswith("entries 1..5 are missing")
    rewritten = dataclasses.replace(rows[4], hash="f" * 64)
    (disagrees,) = anchor_problems([*rows[:4], rewritten], checkpoint)
    assert disagrees.startswith("entry 5 disagrees with the anchored head")


def test_the_anchor_publishes_when_due_and_never_over_a_shorter_or_other_history() -> None:
    rows = _chain(5)
    checkpoint = _checkpoint(rows[:3])
    assert checkpoint_due(Head(1, "h"), None, None, 0, entries=100, seconds=10).publish
    assert not checkpoint_due(None, None, None, 0, entries=100, seconds=10).publish
    head = Head(5, rows[4].hash)
    same = rows[2].hash
    assert not checkpoint_due(head, checkpoint, same, 1, entries=100, seconds=10).publish
    assert checkpoint_due(head, checkpoint, same, 11, entries=100, seconds=10).publish
    assert checkpoint_due(head, checkpoint, same, 1, entries=2, seconds=10).publish
    shorter = checkpoint_due(Head(2, rows[1].hash), checkpoint, None, 99, entries=1, seconds=1)
    assert not shorter.publish and "not signing a shorter head" in (shorter.refusal or "")
    other = checkpoint_due(head, checkpoint, "0" * 64, 99, entries=1, seconds=1)
    assert not other.publish and "rewritten" in (other.refusal or "")
