"""The audit anchor process: `python -m services.entrypoints.audit_anchor`.

Reads every audit chain's head (its database role may read the audit logs and nothing
else) and publishes a signed checkpoint to the checkpoint topic (its Kafka identity is
the only one that may write there) once a chain is REDLINE_AUDIT_CHECKPOINT_ENTRIES
entries or REDLINE_AUDIT_CHECKPOINT_SECONDS past its last checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from events.authorities import NATURAL_RESOURCES
from events.signing import TrustStore
from services.adapters.audit import audit_hash_at, audit_head, audited_schemas
from services.adapters.audit_anchor import publish_checkpoints, read_checkpoint_values
from services.adapters.postgres import connection, create_pool
from services.audit.anchor import (
    Checkpoint,
    Head,
    checkpoint_due,
    latest_checkpoints,
    sign_checkpoint,
)
from services.bootstrap import load_signer, utc_now
from services.config import Settings, load_settings
from services.errors import BrokerError, DatabaseError
from services.runtime.service import retrying, serve, wait_set

log = logging.getLogger("redline.audit.anchor")


class AuditAnchor:
    """One pass at a time: which heads are due, signed and published."""

    def __init__(
        self, settings: Settings, pool: Any, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.signer = load_signer(settings, NATURAL_RESOURCES)
        self.trust = TrustStore.load(settings.trust_store)
        self.anchored: dict[str, Checkpoint] = {}
        self.published_at: dict[str, float] = {}
        self.database = ""
        self.refusals: list[str] = []

    async def load(self) -> None:
        """What is anchored already: the topic's latest valid head per schema."""
        kafka, _ = self.settings.require()
        async with connection(self.pool) as conn:
            self.database = await conn.fetchval("SELECT current_database()")
        values = await read_checkpoint_values(kafka, self.settings.kafka_auth)
        self.anchored, refused = latest_checkpoints(values, self.trust, self.database)
        for reason in refused:
            log.warning("audit checkpoint topic: %s", reason)

    async def once(self, *, force: bool = False) -> list[Checkpoint]:
        """Publish the checkpoints due now (every moved head if `force`); returns them."""
        kafka, _ = self.settings.require()
        due: list[Checkpoint] = []
        self.refusals = []
        at = self.clock().isoformat()
        async with connection(self.pool) as conn:
            for schema in await audited_schemas(conn):
                found = await audit_head(conn, schema)
                head = Head(*found) if found else None
                anchored = self.anchored.get(schema)
                hash_at = await audit_hash_at(conn, schema, anchored.seq) if anchored else None
                since = time.monotonic() - self.published_at.get(schema, float("-inf"))
                decision = checkpoint_due(
                    head,
                    anchored,
                    hash_at,
                    0.0 if force else since,
                    entries=1 if force else self.settings.audit_checkpoint_entries,
                    seconds=self.settings.audit_checkpoint_seconds,
                )
                if decision.refusal:
                    self.refusals.append(decision.refusal)
                    log.error("audit trail tampered with: %s", decision.refusal)
                if decision.publish and head is not None:
                    due.append(sign_checkpoint(self.signer, self.database, schema, head, at))
        await publish_checkpoints(kafka, due, self.settings.kafka_auth)
        for checkpoint in due:
            self.anchored[checkpoint.schema] = checkpoint
            self.published_at[checkpoint.schema] = time.monotonic()
        return due


async def run_anchor(settings: Settings, stop: asyncio.Event, *, poll: float = 1.0) -> None:
    _, database = settings.require()
    pool = await retrying(stop, lambda: create_pool(database, max_size=1), what="audit anchor")
    if pool is None:
        return
    try:
        anchor = AuditAnchor(settings, pool)
        while not stop.is_set():
            try:
                await anchor.load()
                break
            except (BrokerError, DatabaseError) as exc:
                log.warning("audit anchor: %s; retrying", exc)
                await wait_set(stop, 1.0)
        while not stop.is_set():
            try:
                published = await anchor.once()
            except (BrokerError, DatabaseError) as exc:
                log.warning("audit anchor: %s; retrying", exc)
            else:
                for checkpoint in published:
                    log.info("anchored %s at entry %d", checkpoint.key, checkpoint.seq)
            await wait_set(stop, poll)
    finally:
        await pool.close()


def main() -> None:
    settings = load_settings()
    serve(lambda stop: run_anchor(settings, stop))


if __name__ == "__main__":
    main()
