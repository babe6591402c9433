"""Kafka adapter: topic creation and the clients' common settings."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from events.topics import ALL_TOPICS, Topic
from services.errors import BrokerError


async def ensure_topics(
    bootstrap: str, *, replication_factor: int = 1, topics: tuple[Topic, ...] = ALL_TOPICS
) -> list[str]:
    """Create whichever of `topics` are missing; safe to call any number of times.

    Returns the names it created.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        if missing:
            # another process may create them between our list and our create
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            name=topic.name,
                            num_partitions=topic.partitions,
                            replication_factor=replication_factor,
                            topic_configs=dict(topic.config),
                        )
                        for topic in missing
                    ]
                )
        return [topic.name for topic in missing]
    except KafkaError as exc:
        raise BrokerError(f"could not create topics on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()
