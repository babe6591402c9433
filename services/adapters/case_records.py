"""A case's history (table case_records, the registry's schema): a numbered record a step,
written by the registry's commands and by its referrals alike, in their transaction."""

from __future__ import annotations

from typing import Any

import asyncpg


async def append_case_record(
    conn: asyncpg.Connection, case_id: str, step: str, event: tuple[str, str], data: dict[str, Any]
) -> None:
    """The case's next record, of `event` (its id and type): numbered one past its last."""
    await conn.execute(
        "INSERT INTO case_records (case_id, seq, step, event_id, event_type, data) "
        "SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM case_records "
        "WHERE case_id = $1",
        case_id,
        step,
        *event,
        data,
    )
