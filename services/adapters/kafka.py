"""Kafka adapter: topic creation and the clients' common settings."""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import aiokafka.conn
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import AuthenticationFailedError, KafkaError, TopicAlreadyExistsError

from events.topics import ALL_TOPICS, Topic
from services.config import KafkaAuth
from services.errors import BrokerError


def client_options(auth: KafkaAuth | None) -> dict[str, Any]:
    """The keyword arguments every aiokafka client gets for `auth` (none: no SASL)."""
    if auth is None:
        return {}
    options: dict[str, Any] = {
        "security_protocol": auth.security_protocol,
        "sasl_mechanism": auth.mechanism,
        "sasl_plain_username": auth.username,
        "sasl_plain_password": auth.password,
    }
    if auth.tls:
        options["ssl_context"] = ssl.create_default_context()
    return options


class _ScramAuthenticator(aiokafka.conn.ScramAuthenticator):  # type: ignore[misc]
    """aiokafka reads a SCRAM refusal that arrives as a server-final `e=...` message (as
    Tansu sends it, RFC 5802) as a KeyError; this makes it a KafkaError naming the reason,
    so the adapters' KafkaError handling reports a refused login like any broker failure."""

    def process_server_final_message(self, server_final: str) -> None:
        if server_final.startswith("e="):
            raise AuthenticationFailedError(
                f"SCRAM login refused by the broker: {server_final[2:]}"
            )
        super().process_server_final_message(server_final)


aiokafka.conn.ScramAuthenticator = _ScramAuthenticator


async def ensure_topics(
    bootstrap: str,
    *,
    replication_factor: int = 1,
    topics: tuple[Topic, ...] = ALL_TOPICS,
    auth: KafkaAuth | None = None,
) -> list[str]:
    """Create whichever of `topics` are missing; safe to call any number of times.

    Returns the names it created.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10_000, **client_options(auth)
    )
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
