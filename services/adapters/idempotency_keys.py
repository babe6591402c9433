"""The idempotency keys of a PostgreSQL transaction: one table, `idempotency_keys`, for
every command service that shares the registry's database (services.idempotency)."""

from __future__ import annotations

import asyncpg

from services.idempotency import IdempotencyKeys, StoredResponse


class PostgresIdempotencyKeys(IdempotencyKeys):
    conn: asyncpg.Connection

    async def claim_idempotency_key(self, key: str) -> StoredResponse | None:
        # Two requests racing under one key: the second waits here, then sees the first.
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
        row = await self.conn.fetchrow(
            "SELECT operation, request_hash, status_code, response FROM idempotency_keys "
            "WHERE key = $1",
            key,
        )
        if row is None:
            return None
        return StoredResponse(
            row["operation"], row["request_hash"], row["status_code"], row["response"]
        )

    async def save_idempotent_response(self, key: str, response: StoredResponse) -> None:
        await self.conn.execute(
            "INSERT INTO idempotency_keys (key, operation, request_hash, status_code, response) "
            "VALUES ($1, $2, $3, $4, $5)",
            key,
            response.operation,
            response.request_hash,
            response.status_code,
            response.body,
        )
