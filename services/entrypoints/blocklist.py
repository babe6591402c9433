"""The blocklist builder process: `python -m services.entrypoints.blocklist`.

Reads the violation stream in its own consumer group, commits offsets only after a batch
is in its tables, relays its outbox to the compacted blocklist topics, and sends a
heartbeat to every partition while it is caught up: subscribers take a missing heartbeat
as a stale list, never as a clean one. In the same beat it records in its tables when it
was last caught up, which the central check (GET /v1/checks) takes as its freshness. Run
one builder per deployment.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from events.authorities import BLOCKLIST_BUILDER
from events.catalogue import load_catalogue
from events.privacy import SubjectHasher
from events.signing import TrustStore
from events.subject_keys import measure_hashers
from events.topics import BLOCKLIST_MEASURES, VIOLATIONS, blocklist_topic
from services.adapters.blocklist_store import MIGRATIONS, SCHEMA, PostgresBlocklistStore
from services.adapters.group_consumer import GroupConsumer
from services.adapters.outbox import PostgresOutbox
from services.adapters.publisher import KafkaPublisher
from services.blocklist.handlers import CONSUMER, Builder
from services.blocklist.ports import BlocklistStore
from services.bootstrap import load_hasher, load_signer, utc_now
from services.config import Settings
from services.consuming import Issuer
from services.entrypoints.own_outbox import OwnOutbox, own_pool
from services.errors import BrokerError, ConfigError, DatabaseError
from services.runtime.service import retrying, serve_process

GROUP = "redline-blocklist"
log = logging.getLogger("redline.blocklist")


async def run_builder(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Callable[[], datetime] = utc_now,
    heartbeat_every: float = 2.0,
) -> None:
    hasher = load_hasher(settings)
    pool = await own_pool(settings, stop, migrations=MIGRATIONS, schema=SCHEMA, what=CONSUMER)
    if pool is None:
        return
    store = PostgresBlocklistStore(pool)
    try:
        await _claim_subject_key(store, hasher.key_id, stop)
    except ConfigError:
        await pool.close()
        raise
    builder = _builder(settings, store, hasher, clock)
    rebuilding = await _prepare_rebuild(store, stop)
    own = OwnOutbox.open(settings, pool, SCHEMA)
    try:
        consumer = await _start_consumer(settings, rebuilding=rebuilding)
    except BrokerError:
        await own.close()
        raise
    state = {"rebuilding": rebuilding}

    async def beat() -> None:
        vouched = await _heartbeat(
            builder,
            store,
            consumer=consumer,
            outbox=own.outbox,
            publisher=own.publisher,
            clock=clock,
        )
        if vouched and state["rebuilding"]:
            state["rebuilding"] = await store.rebuilt()  # caught up: a restart resumes

    await own.consume(stop, consumer, CONSUMER, builder.handle, tick=beat, every=heartbeat_every)


def _builder(
    settings: Settings, store: BlocklistStore, hasher: SubjectHasher, clock: Callable[[], datetime]
) -> Builder:
    return Builder(
        load_catalogue(),
        store,
        trust=TrustStore.load(settings.trust_store),
        issuer=Issuer(load_signer(settings, BLOCKLIST_BUILDER), BLOCKLIST_BUILDER.source),
        hasher=hasher,
        list_hashers=measure_hashers(_master_key(settings), BLOCKLIST_MEASURES),
        clock=clock,
    )


async def _heartbeat(
    builder: Builder,
    store: PostgresBlocklistStore,
    *,
    consumer: GroupConsumer,
    outbox: PostgresOutbox,
    publisher: KafkaPublisher,
    clock: Callable[[], datetime],
) -> bool:
    """Vouch for the lists as of now, but only if everything known by now is published, to
    the broker the outbox was last published to (an emptied broker gets its replay first).
    The tables themselves are vouched for as soon as the consumer is caught up: the central
    check reads them, not the topics."""
    as_of = clock()
    try:
        if not await consumer.caught_up():
            return False
        await store.vouch(as_of)
        if await outbox.has_pending():
            return True
        if await outbox.known_cluster() != await publisher.cluster_id():
            return True
        # Read after the outbox is empty: every record these heads count is published,
        # and no batch is stored meanwhile (this loop stores them).
        await publisher.publish(builder.heartbeats(as_of, await store.heads()))
    except (BrokerError, DatabaseError, KafkaError) as exc:
        log.warning("heartbeat not sent: %s", exc)
        return False
    return True


async def _claim_subject_key(
    store: PostgresBlocklistStore, key_id: str, stop: asyncio.Event
) -> None:
    built_under = await retrying(stop, lambda: store.claim_subject_key(key_id), what=CONSUMER)
    if built_under is not None and built_under != key_id:
        raise ConfigError(
            f"REDLINE_SUBJECT_KEY: the lists were built under subject key {built_under}, this "
            f"key is {key_id}; hashes under another key cannot be looked up. Rotating "
            "the key needs the blocklist schema rebuilt from the violation stream."
        )


async def _start_consumer(settings: Settings, *, rebuilding: bool) -> GroupConsumer:
    consumer = GroupConsumer(settings, name=CONSUMER, group=GROUP, topics=[VIOLATIONS.name])
    if rebuilding:
        log.warning("rebuilding the lists from the start of the violation stream")
        consumer.kafka.subscribe([VIOLATIONS.name], listener=_FromTheStart(consumer))
    await consumer.start()
    return consumer


async def _prepare_rebuild(store: PostgresBlocklistStore, stop: asyncio.Event) -> bool:
    """Tombstone, once, the keys published under the old single subject key, and say
    whether the lists are being rebuilt from the start of the violation stream."""
    retired = await retrying(
        stop,
        lambda: store.retire_old_keys(
            BLOCKLIST_MEASURES, {m: blocklist_topic(m).name for m in BLOCKLIST_MEASURES}
        ),
        what=CONSUMER,
    )
    if retired:
        log.warning("tombstoned %d list keys published under the old single subject key", retired)
    return bool(await retrying(stop, store.rebuild_requested, what=CONSUMER))


class _FromTheStart(ConsumerRebalanceListener):  # type: ignore[misc]
    """While the lists are rebuilt, every partition assigned is read from its start
    (events already taken are skipped by their ids, so a restart mid-rebuild is safe)."""

    def __init__(self, consumer: GroupConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if assigned:
            await self.consumer.kafka.seek_to_beginning(*assigned)


def _master_key(settings: Settings) -> bytes:
    """The builder's master subject key, from which each list's key is derived."""
    try:
        return bytes.fromhex(settings.subject_key.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"REDLINE_SUBJECT_KEY: cannot read a hex key: {exc}") from exc


def main() -> None:
    serve_process(run_builder)


if __name__ == "__main__":
    main()
