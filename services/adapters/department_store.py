"""PostgreSQL implementation of a department's store, in the department's own schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg

from events.catalogue import Fact, Target
from events.land import LandClass
from events.models import CaseFacts, Project, Site
from services.adapters.audit import append_audit
from services.adapters.outbox import enqueue
from services.adapters.postgres import claim_events, connection, pooled_transaction
from services.audit.domain import AuditEntry
from services.consumer import Consumed
from services.departments.ports import (
    BatchWrites,
    Block,
    BlockApplied,
    BlockChange,
    BlockFilter,
    BlockLifted,
    DepartmentStore,
    DepartmentTransaction,
    KnownCase,
    TargetRef,
)
from services.departments.schema import department_schema as department_schema  # noqa: PLC0414 (re-exported)


class PostgresDepartmentTransaction(DepartmentTransaction):
    def __init__(self, conn: asyncpg.Connection, schema: str) -> None:
        self.conn = conn
        self.schema = schema

    async def claim(self, events: Sequence[Consumed]) -> set[str]:
        return await claim_events(self.conn, self.schema, events)

    # Both look-ups join the batch's case ids rather than test `case_id = ANY($1)`. With
    # the array test, about one backlog drain in three on a fresh schema slowed from
    # ~3,500 to ~1,000 events/s for a minute or more: Postgres spent most of a core on
    # these two queries until autovacuum's next ANALYZE (most likely a cached generic
    # plan made while the tables were small). With the join, 7 drains of 7 held their rate.
    async def known_cases(self, case_ids: Sequence[str]) -> dict[str, KnownCase]:
        rows = await self.conn.fetch(
            f"SELECT c.case_id, c.township, c.subject_kind, c.subject_id, c.subject_name, "
            f"c.facts::text AS facts FROM unnest($1::text[]) AS wanted (case_id) "
            f"JOIN {self.schema}.cases AS c ON c.case_id = wanted.case_id",
            list(case_ids),
        )
        return {
            row["case_id"]: KnownCase(
                row["case_id"],
                row["township"],
                row["subject_kind"],
                row["subject_id"],
                row["subject_name"],
                CaseFacts.model_validate_json(row["facts"]) if row["facts"] else None,
            )
            for row in rows
        }

    async def active_blocks(self, case_ids: Sequence[str]) -> set[tuple[str, str]]:
        rows = await self.conn.fetch(
            f"SELECT b.measure, b.case_id FROM unnest($1::text[]) AS wanted (case_id) "
            f"JOIN {self.schema}.blocks AS b ON b.case_id = wanted.case_id "
            "AND b.lifted_at IS NULL",
            list(case_ids),
        )
        return {(row["measure"], row["case_id"]) for row in rows}

    async def write(self, writes: BatchWrites) -> None:
        """One statement per table and kind of change over arrays (unnest), not one per
        row: a backlog's batch of 2000 is then a few statements for the server, not
        10,000. JSON travels as text and is cast in SQL, whatever the connection's codecs."""
        s = self.schema
        if writes.cases:
            cases = [c.case for c in writes.cases]
            await self.conn.execute(
                f"INSERT INTO {s}.cases (case_id, township, subject_kind, subject_id, "
                "subject_name, filed_event, facts) SELECT c, t, k, i, n, e, f::jsonb FROM "
                "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
                "$6::text[], $7::text[]) AS x (c, t, k, i, n, e, f) "
                "ON CONFLICT (case_id) DO NOTHING",
                [c.case_id for c in cases],
                [c.township for c in cases],
                [c.subject_kind for c in cases],
                [c.subject_id for c in cases],
                [c.subject_name for c in cases],
                [c.filed_event for c in writes.cases],
                [c.facts.model_dump_json() if c.facts else None for c in cases],
            )
        if writes.corrected:
            latest = {c.case_id: c.facts for c in writes.corrected}  # the last one stands
            await self.conn.execute(
                f"UPDATE {s}.cases AS c SET facts = x.facts::jsonb "
                "FROM unnest($1::text[], $2::text[]) AS x (case_id, facts) "
                "WHERE c.case_id = x.case_id",
                list(latest),
                [facts.model_dump_json() for facts in latest.values()],
            )
        upserts, lifts = _final_states(writes.in_order())
        if upserts:
            await self._upsert_blocks(upserts)
        if lifts:
            await self.conn.executemany(
                f"UPDATE {s}.blocks SET lifted_at = $3, lift_reason = $4, lifted_by = $5 "
                "WHERE measure = $1 AND case_id = $2 AND lifted_at IS NULL",
                [(x.measure, x.case_id, x.at, x.reason, x.event_id) for x in lifts],
            )
        await append_audit(self.conn, s, self._decisions(writes), datetime.now(UTC))
        await enqueue(self.conn, s, writes.outgoing)

    async def _upsert_blocks(self, rows: list[tuple[BlockApplied, BlockLifted | None]]) -> None:
        """A block applied again after a lift (a correction moved it, or undid the one that
        ended it) takes over its row: what it is held against and why, and no lift."""
        await self.conn.execute(
            f"INSERT INTO {self.schema}.blocks (measure, case_id, subject_kind, subject_id, "
            "subject_name, legal_basis, applied_at, applied_by, target, target_ref, rule, "
            "land, facts, lifted_at, lift_reason, lifted_by) "
            "SELECT m, c, k, i, n, b, a, e, t, r::jsonb, u, l::jsonb, f::jsonb, la, lr, le "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
            "$6::text[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[], "
            "$12::text[], $13::text[], $14::timestamptz[], $15::text[], $16::text[]) "
            "AS x (m, c, k, i, n, b, a, e, t, r, u, l, f, la, lr, le) "
            "ON CONFLICT (measure, case_id) DO UPDATE SET "
            "subject_kind = EXCLUDED.subject_kind, subject_id = EXCLUDED.subject_id, "
            "subject_name = EXCLUDED.subject_name, legal_basis = EXCLUDED.legal_basis, "
            "applied_at = EXCLUDED.applied_at, applied_by = EXCLUDED.applied_by, "
            "target = EXCLUDED.target, target_ref = EXCLUDED.target_ref, "
            "rule = EXCLUDED.rule, land = EXCLUDED.land, facts = EXCLUDED.facts, "
            "lifted_at = EXCLUDED.lifted_at, lift_reason = EXCLUDED.lift_reason, "
            "lifted_by = EXCLUDED.lifted_by",
            [a.measure for a, _ in rows],
            [a.case.case_id for a, _ in rows],
            [a.case.subject_kind for a, _ in rows],
            [a.case.subject_id for a, _ in rows],
            [a.case.subject_name for a, _ in rows],
            [a.legal_basis for a, _ in rows],
            [a.at for a, _ in rows],
            [a.event_id for a, _ in rows],
            [a.target.value for a, _ in rows],
            [_target_json(a) for a, _ in rows],
            [a.rule for a, _ in rows],
            [json.dumps(a.land) for a, _ in rows],
            [json.dumps(a.facts) for a, _ in rows],
            [x.at if x else None for _, x in rows],
            [x.reason if x else None for _, x in rows],
            [x.event_id if x else None for _, x in rows],
        )

    def _decisions(self, writes: BatchWrites) -> list[AuditEntry]:
        """Every block applied or lifted, with the event that caused it and its basis."""
        department = self.schema.removeprefix("dept_")
        decisions = []
        for change in writes.in_order():
            if isinstance(change, BlockApplied):
                decisions.append(
                    AuditEntry(
                        actor=department,
                        action=f"apply {change.measure}",
                        case_id=change.case.case_id,
                        reason=f"caused by {change.event_id}",
                        legal_basis=change.legal_basis,
                        data={
                            "measure": change.measure,
                            "subject_kind": change.case.subject_kind,
                            "target": change.target.value,
                            "rule": change.rule,
                            "facts": list(change.facts),
                        },
                    )
                )
            else:
                decisions.append(
                    AuditEntry(
                        actor=department,
                        action=f"lift {change.measure}",
                        case_id=change.case_id,
                        reason=f"{change.reason}, caused by {change.event_id}",
                        legal_basis="",
                        data={"measure": change.measure},
                    )
                )
        return decisions


def _final_states(
    changes: list[BlockChange],
) -> tuple[list[tuple[BlockApplied, BlockLifted | None]], list[BlockLifted]]:
    """Each block's state at the end of the batch: rows to write whole (applied in the
    batch, with the lift that followed, if any) and lifts of rows applied before it."""
    upserts: dict[tuple[str, str], tuple[BlockApplied, BlockLifted | None]] = {}
    lifts: dict[tuple[str, str], BlockLifted] = {}
    for change in changes:
        if isinstance(change, BlockApplied):
            key = (change.measure, change.case.case_id)
            upserts[key] = (change, None)
            lifts.pop(key, None)  # the row is written whole
        else:
            key = (change.measure, change.case_id)
            if key in upserts:
                upserts[key] = (upserts[key][0], change)
            else:
                lifts[key] = change
    return list(upserts.values()), list(lifts.values())


def _target_json(block: BlockApplied) -> str | None:
    ref = block.target_ref
    if ref is None and block.target is Target.subject:
        ref = block.case.subject_id
    if isinstance(ref, Site | Project):
        return ref.model_dump_json()
    return None if ref is None else json.dumps(ref)


def _target_ref(target: Target, raw: str | None) -> TargetRef:
    if raw is None:
        return None
    if target is Target.site:
        return Site.model_validate_json(raw)
    if target is Target.project:
        return Project.model_validate_json(raw)
    return str(json.loads(raw))


class PostgresDepartmentStore(DepartmentStore):
    def __init__(self, pool: Any, code: str) -> None:
        self.pool = pool
        self.schema = department_schema(code)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[DepartmentTransaction]:
        async with pooled_transaction(self.pool) as conn:
            yield PostgresDepartmentTransaction(conn, self.schema)

    async def blocks(self, where: BlockFilter) -> list[Block]:
        async with connection(self.pool) as conn:
            rows = await conn.fetch(
                f"SELECT measure, case_id, subject_kind, subject_id, subject_name, legal_basis, "
                f"applied_at, lifted_at, lift_reason, target, target_ref::text AS target_ref, "
                f"rule, land::text AS land, facts::text AS facts FROM {self.schema}.blocks "
                "WHERE ($1::text IS NULL OR subject_id = $1) "
                "AND (NOT $2 OR lifted_at IS NULL) "
                "AND ($3::text IS NULL OR target = 'site' AND $3 IN "
                "(target_ref->>'real_estate_unit', target_ref->>'parcel_code', "
                "target_ref->>'location')) "
                "AND ($4::text IS NULL OR target = 'project' AND target_ref->>'code' = $4) "
                "ORDER BY applied_at, case_id, measure",
                where.subject_id,
                where.active_only,
                where.site,
                where.project,
            )
        blocks = []
        for row in rows:
            target = Target(row["target"])
            blocks.append(
                Block(
                    measure=row["measure"],
                    case_id=row["case_id"],
                    subject_kind=row["subject_kind"],
                    subject_id=row["subject_id"],
                    subject_name=row["subject_name"],
                    legal_basis=row["legal_basis"],
                    applied_at=row["applied_at"],
                    lifted_at=row["lifted_at"],
                    lift_reason=row["lift_reason"],
                    target=target,
                    target_ref=_target_ref(target, row["target_ref"]),
                    rule=row["rule"],
                    land=tuple(LandClass(x) for x in json.loads(row["land"])),
                    facts=tuple(Fact(x) for x in json.loads(row["facts"])),
                )
            )
        return blocks
