"""A department's PostgreSQL schema name, which also labels its outbox (its relay's metrics).
Pure, so the deploy model and the adapters share the one rule without importing asyncpg."""

from __future__ import annotations


def department_schema(code: str) -> str:
    return f"dept_{code}"
