"""The audit trail in PostgreSQL: appended inside the caller's transaction, one writer of
a schema's chain at a time, so the chain never forks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from services.audit.domain import GENESIS, AuditEntry, AuditRow, chain_hash


async def append_audit(
    conn: asyncpg.Connection, schema: str, entries: Sequence[AuditEntry], at: datetime
) -> None:
    if not entries:
        return
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"redline-audit:{schema}"
    )
    last = await conn.fetchrow(
        f"SELECT seq, hash FROM {schema}.audit_log ORDER BY seq DESC LIMIT 1"
    )
    seq, prev = (last["seq"], last["hash"]) if last else (0, GENESIS)
    rows = []
    for entry in entries:
        seq += 1
        digest = chain_hash(prev, seq, at, entry)
        rows.append(
            (
                seq,
                at,
                entry.actor,
                entry.action,
                entry.case_id,
                entry.reason,
                entry.legal_basis,
                json.dumps(entry.data, ensure_ascii=False),
                prev,
                digest,
            )
        )
        prev = digest
    await conn.executemany(
        f"INSERT INTO {schema}.audit_log (seq, at, actor, action, case_id, reason, "
        "legal_basis, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::jsonb, "
        "$9, $10)",
        rows,
    )


async def read_audit(conn: asyncpg.Connection, schema: str) -> list[AuditRow]:
    # data as text, whatever JSON codec the connection has: the hash covers what was written
    rows = await conn.fetch(
        f"SELECT seq, at, actor, action, case_id, reason, legal_basis, data::text AS data, "
        f"prev_hash, hash FROM {schema}.audit_log ORDER BY seq"
    )
    return [
        AuditRow(
            seq=row["seq"],
            at=row["at"],
            entry=AuditEntry(
                actor=row["actor"],
                action=row["action"],
                case_id=row["case_id"],
                reason=row["reason"],
                legal_basis=row["legal_basis"],
                data=json.loads(row["data"]),
            ),
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )
        for row in rows
    ]


async def audited_schemas(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'audit_log' "
        "AND (table_schema = 'public' OR table_schema ~ '^dept_[a-z0-9_]+$') "
        "ORDER BY table_schema"
    )
    return [row["table_schema"] for row in rows]


async def audit_head(conn: asyncpg.Connection, schema: str) -> tuple[int, str] | None:
    """The last entry's sequence number and hash, or None for an empty trail."""
    row = await conn.fetchrow(f"SELECT seq, hash FROM {schema}.audit_log ORDER BY seq DESC LIMIT 1")
    return (row["seq"], row["hash"]) if row else None


async def audit_hash_at(conn: asyncpg.Connection, schema: str, seq: int) -> str | None:
    hash_: str | None = await conn.fetchval(
        f"SELECT hash FROM {schema}.audit_log WHERE seq = $1", seq
    )
    return hash_
