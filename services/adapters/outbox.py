"""PostgreSQL outbox: the registry's (schema public) and each department's (own schema)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

import asyncpg

from services.adapters.postgres import TRANSIENT_ERRORS, connection
from services.errors import DatabaseError
from services.outbox.ports import OutboxStore, OutgoingEvent, PendingEvent
from services.runtime.service import wait_set

_UNSENT = (
    "SELECT position, topic, key, value FROM {schema}.outbox "
    "WHERE sent_at IS NULL AND quarantined_at IS NULL"
)
# The first unsent events in order.
_PENDING = _UNSENT + " ORDER BY position LIMIT $1"
# The same, leaving out the window in flight: every position in [$2, $3] but the holes $4.
# Each branch is a range of outbox_pending (or a few of its rows) read in order, merged:
# nothing walks the window's own rows.
_PENDING_BESIDES = (
    f"({_UNSENT} AND position < $2 ORDER BY position LIMIT $1) UNION ALL "
    f"({_UNSENT} AND position BETWEEN $2 AND $3 AND position = ANY($4::bigint[])) UNION ALL "
    f"({_UNSENT} AND position > $3 ORDER BY position LIMIT $1) "
    "ORDER BY position LIMIT $1"
)
# Past this many holes in the window's span, read past the window and drop it instead.
MAX_HOLES = 4096


async def enqueue(conn: asyncpg.Connection, schema: str, events: Sequence[OutgoingEvent]) -> None:
    """Add events to an outbox inside the caller's transaction; an id already there is kept."""
    if not events:
        return
    await conn.executemany(
        f"INSERT INTO {schema}.outbox (event_id, event_type, topic, key, value) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        [(e.event_id, e.event_type, e.topic, e.key, e.value) for e in events],
    )


class PostgresOutbox(OutboxStore):
    def __init__(
        self,
        pool: Any,
        database_url: str,
        *,
        schema: str = "public",
        channel: str | None = "redline_outbox",
    ) -> None:
        """`channel`: what its table's writers NOTIFY on commit (the registry's outbox); None
        where each writer wakes the relay beside it instead (departments, builder, tracker:
        their migrations drop the trigger). Such a relay keeps no listening connection:
        Postgres signals every listening backend of the database at every NOTIFY, whatever
        its channel, and 24 idle listeners cost each filing's commit 300 us more CPU."""
        self.pool = pool
        self.database_url = database_url
        self.schema = schema
        self.channel = channel
        self._listener: asyncpg.Connection | None = None
        self._leader: asyncpg.Connection | None = None
        self._leading = asyncio.Lock()  # one statement at a time on the lead connection
        self._woken = asyncio.Event()

    def _read(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return connection(self.pool)

    async def lead(self) -> bool:
        """Hold a session advisory lock on a connection of our own; a relay whose
        connection died has lost the lock with it and must win it again.

        The relay reads and marks over that same connection (`_session`), so each read and
        each mark proves the lead afresh: a lead already held costs no round trip here.
        """
        if self._leader is not None and not self._leader.is_closed():
            return True
        self._drop_lead()
        try:
            conn = await asyncpg.connect(self.database_url)
            try:
                won = await conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    f"redline-relay:{self.schema}",
                )
                if won:
                    # Its reads walk outbox_pending in order and stop at the limit: a custom
                    # plan made without fresh statistics (a backlog just written) sorts every
                    # pending row instead, 20x slower. A mark lost with an unflushed commit
                    # only sends its events again (at least once), and marks commit in order,
                    # so a crash loses a tail of them, never one in the middle.
                    await conn.execute(
                        "SET plan_cache_mode = force_generic_plan; SET synchronous_commit = off"
                    )
            except BaseException:
                conn.terminate()  # not ours to keep: it never held the lock
                raise
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            raise DatabaseError(f"cannot hold the relay lead: {exc}") from exc
        if won:
            self._leader = conn
        else:
            await conn.close()
        return bool(won)

    def _drop_lead(self) -> None:
        if self._leader is not None:
            self._leader.terminate()
            self._leader = None

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[asyncpg.Connection]:
        """The lead connection when this relay holds the lead, else a pooled one.

        A failure on the lead connection gives the lead up: the relay wins it again on a new
        connection before it reads or marks anything more.
        """
        if self._leader is None:
            async with self._read() as conn:
                yield conn
            return
        async with self._leading:
            leader = self._leader
            if leader is None:
                raise DatabaseError("the relay lead was given up")
            try:
                yield leader
            except BaseException as exc:
                self._drop_lead()
                if isinstance(exc, (*TRANSIENT_ERRORS, asyncpg.PostgresError)):
                    raise DatabaseError(f"database error: {exc}") from exc
                raise

    async def pending(self, limit: int) -> list[PendingEvent]:
        return await self._fetch_pending(_PENDING, limit)

    async def pending_besides(
        self, limit: int, in_flight: Sequence[PendingEvent]
    ) -> list[PendingEvent]:
        """One read that leaves the window in flight out without walking it: index ranges
        below and above it, and the positions inside its span it does not hold (rows
        committed late under lower positions, or released), merged in order."""
        if not in_flight:
            return await self.pending(limit)
        held = sorted(event.position for event in in_flight)
        low, high = held[0], held[-1]
        if high - low + 1 - len(held) > MAX_HOLES:
            return await super().pending_besides(limit, in_flight)
        holes = [hole for a, b in itertools.pairwise(held) for hole in range(a + 1, b)]
        return await self._fetch_pending(_PENDING_BESIDES, limit, low, high, holes)

    async def _fetch_pending(self, query: str, *args: Any) -> list[PendingEvent]:
        sql = query.format(schema=self.schema)
        async with self._session() as conn:
            on_lead = conn is self._leader  # on a generic plan already (see lead)
            if on_lead:
                rows = await conn.fetch(sql, *args)
            else:
                async with conn.transaction():
                    await conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                    rows = await conn.fetch(sql, *args)
        return [PendingEvent(*row) for row in rows]

    async def mark_sent(self, positions: Sequence[int]) -> None:
        async with self._session() as conn:
            await conn.execute(
                f"UPDATE {self.schema}.outbox SET sent_at = now(), send_count = send_count + 1 "
                "WHERE position = ANY($1::bigint[])",
                list(positions),
            )

    async def quarantine(self, positions: Sequence[int], reason: str) -> int:
        async with self._read() as conn:
            result: str = await conn.execute(
                f"UPDATE {self.schema}.outbox SET quarantined_at = now(), quarantine_reason = $2 "
                "WHERE position = ANY($1::bigint[]) AND sent_at IS NULL AND quarantined_at IS NULL",
                list(positions),
                reason[:2000],
            )
        return int(result.rsplit(maxsplit=1)[-1])

    async def quarantined(self) -> int:
        async with self._read() as conn:
            found: int = await conn.fetchval(
                f"SELECT count(*) FROM {self.schema}.outbox WHERE quarantined_at IS NOT NULL"
            )
        return found

    async def release(self, positions: Sequence[int] | None = None) -> int:
        """Put quarantined events back in the queue (all, or those at `positions`), once
        what refused them is fixed; they go out at their place in the order. The reason
        stays on the row as its history."""
        async with self._read() as conn, conn.transaction():
            result: str = await conn.execute(
                f"UPDATE {self.schema}.outbox SET quarantined_at = NULL "
                "WHERE quarantined_at IS NOT NULL "
                "AND ($1::bigint[] IS NULL OR position = ANY($1::bigint[]))",
                None if positions is None else list(positions),
            )
            await self._notify(conn)
        self.wake()
        return int(result.rsplit(maxsplit=1)[-1])

    async def _notify(self, conn: asyncpg.Connection) -> None:
        """Wake a relay listening in another process (one not listening finds the rows
        within its idle wait)."""
        if self.channel is not None:
            await conn.execute("SELECT pg_notify($1, '')", self.channel)

    async def wait_for_new(self, timeout: float) -> None:
        try:
            if self.channel is not None and (self._listener is None or self._listener.is_closed()):
                # Its own connection, not a pooled one: a pool may hand a connection that
                # lost its server to another user while we still wait on it.
                self._listener = await asyncpg.connect(self.database_url)
                await self._listener.add_listener(self.channel, self.wake)
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            self._listener = None
            raise DatabaseError(f"cannot listen for outbox events: {exc}") from exc
        await wait_set(self._woken, timeout)
        self._woken.clear()

    def wake(self, *_notification: object) -> None:
        """Wake this process's relay: called on a NOTIFY, or by the writer of an outbox
        whose relay runs beside it after its commit (see the outboxes' migration 0004)."""
        self._woken.set()

    async def has_pending(self) -> bool:
        """Whether any event waits to be published (asked by any process, lead or not)."""
        async with self._read() as conn:
            found: bool = await conn.fetchval(
                f"SELECT EXISTS (SELECT FROM {self.schema}.outbox "
                "WHERE sent_at IS NULL AND quarantined_at IS NULL)"
            )
        return found

    async def replay_from(self, *, position: int | None, since: datetime | None) -> int:
        async with self._read() as conn, conn.transaction():
            result: str = await conn.execute(
                f"UPDATE {self.schema}.outbox SET sent_at = NULL "
                "WHERE sent_at IS NOT NULL AND ($1::bigint IS NULL OR position >= $1) "
                "AND ($2::timestamptz IS NULL OR created_at >= $2)",
                position,
                since,
            )
            await self._notify(conn)
        return int(result.rsplit(maxsplit=1)[-1])

    async def known_cluster(self) -> str | None:
        async with self._read() as conn:
            found: str | None = await conn.fetchval(
                f"SELECT cluster_id FROM {self.schema}.relay_state"
            )
        return found

    async def remember_cluster(self, cluster_id: str) -> None:
        async with self._read() as conn:
            await conn.execute(
                f"INSERT INTO {self.schema}.relay_state (cluster_id) VALUES ($1) "
                "ON CONFLICT (singleton) "
                "DO UPDATE SET cluster_id = excluded.cluster_id, updated_at = now()",
                cluster_id,
            )

    async def close(self) -> None:
        for conn in (self._listener, self._leader):
            if conn is not None:
                with contextlib.suppress(*TRANSIENT_ERRORS):
                    await conn.close()
        self._listener = self._leader = None
