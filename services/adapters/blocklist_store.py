"""PostgreSQL implementation of the blocklist builder's store (schema `blocklist`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from events.catalogue import Fact, Target
from events.land import LandClass
from services.adapters.outbox import enqueue
from services.adapters.postgres import claim_events, connection, pooled_transaction
from services.blocklist.domain import ActiveBlock, ListedCase, ListHashes, Why
from services.blocklist.ports import (
    BlocklistStore,
    BlocklistTransaction,
    Head,
    ListWrites,
    NewBlock,
    Published,
)
from services.blocklist.queries import Vouched
from services.consumer import Consumed
from services.outbox.ports import OutgoingEvent

SCHEMA = "blocklist"
MIGRATIONS = "services.blocklist.migrations"

_CASE_COLUMNS = "case_id, subject_hash, subject_kind, masked_name, site_hashes, list_hashes"
_ACTIVE = (
    "SELECT b.measure, b.department, b.case_id, b.legal_basis, b.since, "
    "b.target, b.rule, b.facts, b.land, "
    "c.subject_hash, c.subject_kind, c.masked_name, c.site_hashes, c.list_hashes "
    f"FROM {SCHEMA}.blocks b JOIN {SCHEMA}.cases c USING (case_id) "
    "WHERE b.lifted_at IS NULL "
)


def _list_hashes_json(lists: tuple[ListHashes, ...]) -> dict[str, Any]:
    return {h.measure: {"subject": h.subject_hash, "sites": list(h.site_hashes)} for h in lists}


def _listed_case(row: asyncpg.Record) -> ListedCase:
    return ListedCase(
        row["case_id"],
        row["subject_hash"],
        row["subject_kind"],
        row["masked_name"],
        tuple(row["site_hashes"]),
        tuple(
            ListHashes(measure, on["subject"], tuple(on["sites"]))
            for measure, on in sorted(row["list_hashes"].items())
        ),
    )


def _active_block(row: asyncpg.Record) -> ActiveBlock:
    target = row["target"]
    return ActiveBlock(
        measure=row["measure"],
        department=row["department"],
        case_id=row["case_id"],
        legal_basis=row["legal_basis"],
        since=row["since"],
        case=_listed_case(row),
        why=Why(
            target=None if target is None else Target(target),
            rule=row["rule"],
            facts=tuple(Fact(fact) for fact in row["facts"]),
            land=tuple(LandClass(land) for land in row["land"]),
        ),
    )


class PostgresBlocklistTransaction(BlocklistTransaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        return await claim_events(self.conn, SCHEMA, events)

    async def cases(self, case_ids: Sequence[str]) -> dict[str, ListedCase]:
        rows = await self.conn.fetch(
            f"SELECT {_CASE_COLUMNS} FROM {SCHEMA}.cases WHERE case_id = ANY($1::text[])",
            list(case_ids),
        )
        return {row["case_id"]: _listed_case(row) for row in rows}

    async def active_on(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        rows = await self.conn.fetch(
            f"SELECT measure, case_id FROM {SCHEMA}.blocks "
            "WHERE case_id = ANY($1::text[]) AND lifted_at IS NULL",
            list(case_ids),
        )
        return {(row["measure"], row["case_id"]) for row in rows}

    async def write(self, writes: ListWrites) -> None:
        if writes.cases:
            await self.conn.executemany(
                f"INSERT INTO {SCHEMA}.cases ({_CASE_COLUMNS}, filed_event, site_event) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (case_id) DO NOTHING",
                [
                    (
                        c.case_id,
                        c.subject_hash,
                        c.subject_kind,
                        c.masked_name,
                        list(c.site_hashes),
                        _list_hashes_json(c.lists),
                        event_id,
                    )
                    for c, event_id in writes.cases
                ],
            )
        if writes.sites:
            await self.conn.executemany(
                f"UPDATE {SCHEMA}.cases SET site_hashes = $2, site_event = $3, "
                "list_hashes = $4 WHERE case_id = $1",
                [
                    (m.case_id, list(m.site_hashes), m.event_id, _list_hashes_json(m.lists))
                    for m in writes.sites
                ],
            )
        if writes.applied:
            await self._apply_blocks(writes.applied)
        if writes.lifted:
            await self.conn.executemany(
                f"UPDATE {SCHEMA}.blocks SET lifted_at = $3, lifted_by = $4 "
                "WHERE measure = $1 AND case_id = $2 AND lifted_at IS NULL",
                [(x.measure, x.case_id, x.at, x.event_id) for x in writes.lifted],
            )

    async def _apply_blocks(self, applied: Sequence[NewBlock]) -> None:
        """Blocks applied, each with why (target, rule, facts, land)."""
        # A block lifted (by a correction) and applied again is the same row, replaced.
        await self.conn.executemany(
            f"INSERT INTO {SCHEMA}.blocks (measure, case_id, subject_hash, department, "
            "legal_basis, since, applied_by, target, rule, facts, land) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
            "ON CONFLICT (measure, case_id) DO UPDATE SET "
            "subject_hash = excluded.subject_hash, department = excluded.department, "
            "legal_basis = excluded.legal_basis, since = excluded.since, "
            "applied_by = excluded.applied_by, target = excluded.target, "
            "rule = excluded.rule, facts = excluded.facts, land = excluded.land, "
            "lifted_at = NULL, lifted_by = NULL",
            [
                (
                    a.measure,
                    a.case.case_id,
                    a.case.subject_hash,
                    a.department,
                    a.legal_basis,
                    a.since,
                    a.event_id,
                    None if a.why.target is None else a.why.target.value,
                    a.why.rule,
                    [fact.value for fact in a.why.facts],
                    [land.value for land in a.why.land],
                )
                for a in applied
            ],
        )

    async def listed(self, keys: Sequence[tuple[str, str]]) -> list[ActiveBlock]:
        if not keys:
            return []
        rows = await self.conn.fetch(
            _ACTIVE + "AND (b.measure, b.subject_hash) IN "
            "(SELECT * FROM unnest($1::text[], $2::text[]))",
            [measure for measure, _ in keys],
            [subject_hash for _, subject_hash in keys],
        )
        return [_active_block(row) for row in rows]

    async def subjects(self, subject_hashes: Sequence[str]) -> dict[str, ListedCase]:
        rows = await self.conn.fetch(
            f"SELECT DISTINCT ON (subject_hash) {_CASE_COLUMNS} FROM {SCHEMA}.cases "
            "WHERE subject_hash = ANY($1::text[]) ORDER BY subject_hash, case_id",
            list(subject_hashes),
        )
        return {row["subject_hash"]: _listed_case(row) for row in rows}

    async def published(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Published]:
        rows = await self.conn.fetch(
            f"SELECT measure, subject_hash, kafka_partition, version, listed "
            f"FROM {SCHEMA}.published WHERE (measure, subject_hash) IN "
            "(SELECT * FROM unnest($1::text[], $2::text[]))",
            [measure for measure, _ in keys],
            [subject for _, subject in keys],
        )
        return {(row["measure"], row["subject_hash"]): Published(*row.values()) for row in rows}

    async def next_versions(self, count: int) -> list[int]:
        rows = await self.conn.fetch(
            f"SELECT nextval('{SCHEMA}.list_version') AS v FROM generate_series(1, $1)", count
        )
        return sorted(row["v"] for row in rows)

    async def heads(
        self, measure_partitions: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], Head]:
        rows = await self.conn.fetch(
            f"SELECT measure, kafka_partition, entries, digest FROM {SCHEMA}.list_heads "
            "WHERE (measure, kafka_partition) IN (SELECT * FROM unnest($1::text[], $2::int[]))",
            [measure for measure, _ in measure_partitions],
            [partition for _, partition in measure_partitions],
        )
        return {
            (row["measure"], row["kafka_partition"]): (row["entries"], row["digest"])
            for row in rows
        }

    async def record_published(
        self, rows: Sequence[Published], heads: dict[tuple[str, int], Head]
    ) -> None:
        await self.conn.executemany(
            f"INSERT INTO {SCHEMA}.published (measure, subject_hash, kafka_partition, version, "
            "listed) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (measure, subject_hash) DO UPDATE "
            "SET kafka_partition = excluded.kafka_partition, version = excluded.version, "
            "listed = excluded.listed",
            [(r.measure, r.subject_hash, r.partition, r.version, r.listed) for r in rows],
        )
        await self.conn.executemany(
            f"INSERT INTO {SCHEMA}.list_heads (measure, kafka_partition, entries, digest) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (measure, kafka_partition) DO UPDATE "
            "SET entries = excluded.entries, digest = excluded.digest",
            [(m, p, entries, digest) for (m, p), (entries, digest) in heads.items()],
        )

    async def enqueue(self, outgoing: Sequence[OutgoingEvent]) -> None:
        await enqueue(self.conn, SCHEMA, outgoing)


class PostgresBlocklistStore(BlocklistStore):
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[BlocklistTransaction]:
        """One batch at a time across every builder: a second builder (a rolling update)
        waits here, and then reads the entries the first one wrote."""
        async with pooled_transaction(self.pool) as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('redline-blocklist-builder', 0))"
            )
            yield PostgresBlocklistTransaction(conn)

    async def claim_subject_key(self, key_id: str) -> str:
        """Record the subject key on first use; returns the key the lists are built under."""
        async with connection(self.pool) as conn:
            recorded: str = await conn.fetchval(
                f"WITH mine AS (INSERT INTO {SCHEMA}.subject_key (key_id) VALUES ($1) "
                "ON CONFLICT (singleton) DO NOTHING RETURNING key_id) "
                f"SELECT key_id FROM mine UNION ALL SELECT key_id FROM {SCHEMA}.subject_key",
                key_id,
            )
        return recorded

    async def active(self, measure: str, subject_hash: str) -> list[ActiveBlock]:
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                _ACTIVE + "AND b.measure = $1 AND b.subject_hash = $2 ORDER BY b.since",
                measure,
                subject_hash,
            )
        return [_active_block(row) for row in rows]

    async def vouch(self, as_of: datetime) -> None:
        """Record that the tables hold every event published by `as_of`. Never later than
        the database's own now (a builder clock running ahead vouches for no future), and
        never backwards (two builders in a rolling update)."""
        async with connection(self.pool) as conn:
            await conn.execute(
                f"INSERT INTO {SCHEMA}.vouched (as_of) VALUES (LEAST($1::timestamptz, now())) "
                "ON CONFLICT (singleton) DO UPDATE SET "
                f"as_of = GREATEST({SCHEMA}.vouched.as_of, excluded.as_of), recorded_at = now()",
                as_of,
            )

    async def vouched(self) -> Vouched | None:
        """When the builder last vouched, and how long ago by the database's clock (so the
        API host's clock cannot make old tables look fresh); None if it never has."""
        async with connection(self.pool) as conn:
            row = await conn.fetchrow(
                f"SELECT as_of, extract(epoch FROM now() - as_of)::float8 AS age "
                f"FROM {SCHEMA}.vouched"
            )
        return None if row is None else Vouched(row["as_of"], row["age"])

    async def heads(self) -> dict[tuple[str, int], Head]:
        """Every partition's head, read in one statement (one snapshot)."""
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                f"SELECT measure, kafka_partition, entries, digest FROM {SCHEMA}.list_heads"
            )
        return {
            (row["measure"], row["kafka_partition"]): (row["entries"], row["digest"])
            for row in rows
        }

    async def rebuild_requested(self) -> bool:
        """Whether the lists are being rebuilt from the start of the violation stream
        (migration 0008: the per-measure subject keys)."""
        async with connection(self.pool) as conn:
            return bool(await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.rebuild"))

    async def rebuilt(self) -> bool:
        """The rebuild has caught up with the violation stream: it is not asked again.
        Returns False, whether a rebuild is still under way."""
        async with connection(self.pool) as conn:
            await conn.execute(f"DELETE FROM {SCHEMA}.rebuild")
        return False

    async def retire_old_keys(self, measures: Sequence[str], topic_of: dict[str, str]) -> int:
        """Tombstone, once, the keys the lists were published under with the old single
        subject key, so compaction drops them; returns how many."""
        async with pooled_transaction(self.pool) as conn:
            rows = await conn.fetch(
                f"DELETE FROM {SCHEMA}.retired_keys WHERE measure = ANY($1::text[]) "
                "RETURNING measure, subject_hash",
                list(measures),
            )
            await conn.execute(f"DELETE FROM {SCHEMA}.retired_keys")
            outgoing = [
                OutgoingEvent(
                    f"retired:{row['measure']}:{row['subject_hash']}",
                    "redline.blocklist.tombstone",
                    topic_of[row["measure"]],
                    row["subject_hash"],
                    None,
                )
                for row in rows
            ]
            await enqueue(conn, SCHEMA, outgoing)
        return len(outgoing)

    async def ping(self) -> None:
        """One round trip on a pooled connection: the database answers (or DatabaseError)."""
        async with connection(self.pool) as conn:
            await conn.fetchval("SELECT 1")
