"""Reads the state of the whole bus for the monitor: consumer lag from the broker, and
backlogs, blocks, owed answers and case counts from the databases."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.adapters.kafka import client_options
from services.adapters.postgres import TRANSIENT_ERRORS, connection
from services.config import KafkaAuth
from services.errors import BrokerError, DatabaseError
from services.metrics import BusSnapshot

# Redline's own outboxes only: the registry's, the builder's, the feedback tracker's and
# each department's.
_OUTBOXES = (
    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox' "
    "AND (table_schema IN ('public', 'blocklist', 'feedback') "
    "OR table_schema ~ '^dept_[a-z0-9_]+$') "
    "ORDER BY table_schema"
)


class KafkaLagReader:
    """Committed offsets of each consumer group against the topics' end offsets.

    Offsets are fetched by a group member that never joins (OffsetFetch only), which the
    embedded broker answers where the admin API's request does not decode.
    """

    def __init__(
        self,
        bootstrap: str,
        groups: Mapping[str, tuple[str, Sequence[str]]],
        *,
        auth: KafkaAuth | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.auth = auth
        self.groups = groups  # consumer label -> (group id, topics)
        self._ends: AIOKafkaConsumer | None = None
        self._members: dict[str, AIOKafkaConsumer] = {}

    async def lag(self) -> dict[tuple[str, str], int]:
        try:
            ends_reader = await self._consumer(None)
            await ends_reader.topics()  # refresh metadata: partitions of every topic
            topics = sorted({t for _, ts in self.groups.values() for t in ts})
            partitions = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(ends_reader.partitions_for_topic(topic) or ())
            ]
            ends = await ends_reader.end_offsets(partitions) if partitions else {}
            lag: dict[tuple[str, str], int] = {}
            for label, (group, group_topics) in self.groups.items():
                member = await self._consumer(group)
                for topic in group_topics:
                    behind = 0
                    for tp, end in ends.items():
                        if tp.topic == topic:
                            behind += max(end - (await member.committed(tp) or 0), 0)
                    lag[(label, topic)] = behind
            return lag
        except KafkaError as exc:
            await self.close()
            raise BrokerError(f"cannot read consumer lag from {self.bootstrap}: {exc!r}") from exc

    async def _consumer(self, group: str | None) -> AIOKafkaConsumer:
        found = self._ends if group is None else self._members.get(group)
        if found is None:
            found = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=group,
                enable_auto_commit=False,
                **client_options(self.auth),
            )
            await found.start()
            if group is None:
                self._ends = found
            else:
                self._members[group] = found
        return found

    async def close(self) -> None:
        consumers = [*self._members.values(), *([self._ends] if self._ends else [])]
        self._ends, self._members = None, {}
        for consumer in consumers:
            with contextlib.suppress(KafkaError):
                await consumer.stop()


class PostgresBusReader:
    """Counts from the registry, the tracker, every outbox and the blocklist builder."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def read(self, snapshot: BusSnapshot) -> None:
        try:
            async with connection(self.pool) as conn:
                # Quarantined rows wait for an operator, not the relay: their own gauge and
                # alert name them, so they do not count as a stuck relay's backlog.
                for schema in [r["table_schema"] for r in await conn.fetch(_OUTBOXES)]:
                    row = await conn.fetchrow(
                        f"SELECT count(*) AS backlog, coalesce(extract(epoch FROM "
                        f"now() - min(created_at)), 0) AS age FROM {schema}.outbox "
                        "WHERE sent_at IS NULL AND quarantined_at IS NULL"
                    )
                    name = "registry" if schema == "public" else schema
                    snapshot.outbox_backlog[name] = row["backlog"]
                    snapshot.outbox_oldest_age[name] = float(row["age"])
                snapshot.active_blocks = await _counts(
                    conn,
                    "SELECT measure, count(*) FROM blocklist.blocks WHERE lifted_at IS NULL "
                    "GROUP BY measure",
                    optional=True,
                )
                snapshot.responses_pending = await _counts(
                    conn,
                    "SELECT department, count(*) FROM responses WHERE done_at IS NULL "
                    "AND due_at > now() GROUP BY department",
                )
                snapshot.responses_overdue = await _counts(
                    conn,
                    "SELECT department, count(*) FROM responses WHERE done_at IS NULL "
                    "AND due_at <= now() GROUP BY department",
                )
                snapshot.cases_filed = await _counts(
                    conn, "SELECT township, count(*) FROM cases GROUP BY township"
                )
                snapshot.accountability_referrals = await _counts(
                    conn,
                    "SELECT township, count(*) FROM cases "
                    "WHERE accountability_started_at IS NOT NULL GROUP BY township",
                )
                snapshot.referrals_open = await _counts(
                    conn,
                    "SELECT to_body, count(*) FROM referrals "
                    "WHERE status IN ('sent', 'accepted') GROUP BY to_body",
                    optional=True,
                )
                # Late to answer, or accepted and late to rule (services.referrals.domain).
                snapshot.referrals_overdue = await _counts(
                    conn,
                    "SELECT to_body, count(*) FROM referrals WHERE "
                    "(status = 'sent' AND answer_due_at < now()) OR "
                    "(status = 'accepted' AND outcome_due_at < now()) GROUP BY to_body",
                    optional=True,
                )
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"cannot read the bus state: {exc}") from exc


async def _counts(
    conn: asyncpg.Connection, query: str, *, optional: bool = False
) -> dict[str, int]:
    """`SELECT key, count(*) ...` as a dict; an optional table not created yet gives {}."""
    try:
        rows = await conn.fetch(query)
    except asyncpg.UndefinedTableError:
        if optional:
            return {}
        raise
    return {row[0]: row[1] for row in rows}
