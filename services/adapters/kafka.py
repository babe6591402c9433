"""Kafka adapter: topic creation and checking, and the clients' common settings."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiokafka.conn
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from events.topics import ALL_TOPICS, Topic, broker_settings
from services.config import KafkaAuth
from services.errors import BrokerError

log = logging.getLogger("redline.topics")


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


@dataclass(frozen=True)
class TopicMismatch:
    """One setting of an existing topic that is not what events/topics.py says."""

    topic: str
    setting: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"topic {self.topic}: {self.setting} is {self.actual}, expected {self.expected}"


def topic_mismatches(
    topic: Topic,
    replication_factor: int,
    *,
    partitions: int,
    replicas: int,
    configs: Mapping[str, str],
) -> list[TopicMismatch]:
    """How an existing topic, as the broker describes it, differs from its declaration.

    Partitions must be equal (a key's partition, so a case's order, depends on the count);
    replicas at least the replication factor; each declared setting equal. Settings the
    declaration does not name are the broker's business and are not compared."""
    found: list[TopicMismatch] = []
    if partitions != topic.partitions:
        found.append(
            TopicMismatch(topic.name, "partitions", str(topic.partitions), str(partitions))
        )
    if replicas < replication_factor:
        found.append(
            TopicMismatch(
                topic.name, "replication factor", f"at least {replication_factor}", str(replicas)
            )
        )
    expected, _ = broker_settings(topic, replication_factor)
    for setting, value in expected.items():
        actual = configs.get(setting)
        if actual != value:
            shown = "not set" if actual is None else actual
            found.append(TopicMismatch(topic.name, setting, value, shown))
    return found


async def ensure_topics(
    bootstrap: str,
    *,
    replication_factor: int = 1,
    topics: tuple[Topic, ...] = ALL_TOPICS,
    auth: KafkaAuth | None = None,
    embedded: bool = False,
    check_existing: bool = True,
) -> list[str]:
    """Create whichever of `topics` are missing and check those that exist against their
    declaration; safe to call any number of times. Returns the names it created.

    On an external broker (the default) a topic whose partitions, replicas or settings
    differ, or whose settings the broker will not describe, is refused with BrokerError
    naming topic, setting, expected and actual. `embedded=True` (make run's memory-only
    broker, rebuilt at every start) logs the same as a warning and carries on.
    `check_existing=False` only creates what is missing: a publisher's login may describe
    topics but not their settings (DescribeConfigs is the admin's), and the start-up and
    `redline topics` have checked them already.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=10_000, **client_options(auth)
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [topic for topic in topics if topic.name not in existing]
        for topic in missing:
            _, skipped = broker_settings(topic, replication_factor)
            for setting, why in skipped.items():
                log.info("topic %s: %s left out: %s", topic.name, setting, why)
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=topic.name,
                        num_partitions=topic.partitions,
                        replication_factor=replication_factor,
                        topic_configs=broker_settings(topic, replication_factor)[0],
                    )
                    for topic in missing
                ]
            )
            _raise_creation_errors(response)
        present = [topic for topic in topics if topic.name in existing]
        if present and check_existing:
            await _check_existing(admin, present, replication_factor, embedded=embedded)
        return [topic.name for topic in missing]
    except KafkaError as exc:
        raise BrokerError(f"could not create topics on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()


def _raise_creation_errors(response: Any) -> None:
    """aiokafka returns a refused creation as an error code, not an exception. A topic
    another process created between our list and our create is no error."""
    refused = [
        f"{topic}: {for_code(code).__name__}" + (f" ({message})" if message else "")
        for topic, code, message, *_ in response.topic_errors
        if code not in (0, TopicAlreadyExistsError.errno)
    ]
    if refused:
        raise BrokerError("the broker refused to create topics: " + "; ".join(refused))


async def _check_existing(
    admin: AIOKafkaAdminClient,
    present: list[Topic],
    replication_factor: int,
    *,
    embedded: bool,
) -> None:
    """Compare the existing topics with their declarations; refuse or warn (see above)."""
    try:
        described = await _describe(admin, [topic.name for topic in present])
    except (KafkaError, _CannotDescribe) as exc:
        reason = f"cannot check the settings of existing topics: the broker did not answer ({exc})"
        if not embedded:
            raise BrokerError(
                f"{reason}; the service needs DescribeConfigs and Describe on its topics"
            ) from exc
        log.warning("%s; the embedded broker's topics are not checked", reason)
        return
    problems = [
        mismatch
        for topic in present
        for mismatch in topic_mismatches(topic, replication_factor, **described[topic.name])
    ]
    if not problems:
        return
    text = "; ".join(str(problem) for problem in problems)
    if not embedded:
        raise BrokerError(
            f"existing topics differ from events/topics.py: {text}. Fix them on the broker "
            "(kafka-configs --alter, or recreate the topic) before starting"
        )
    log.warning(
        "existing topics differ from events/topics.py: %s (embedded broker: not refused)", text
    )


class _CannotDescribe(Exception):
    """The broker answered a describe with an error for a topic."""


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, Any]]:
    """Per topic: its partition count, its fewest replicas, and every setting the broker
    reports. All settings are asked for: Tansu closes the connection when a
    DescribeConfigs request names the settings it wants."""
    found: dict[str, dict[str, Any]] = {}
    for topic in await admin.describe_topics(names):
        if topic["error_code"] != 0:
            raise _CannotDescribe(f"{topic['topic']}: {for_code(topic['error_code']).__name__}")
        partitions = topic["partitions"]
        found[topic["topic"]] = {
            "partitions": len(partitions),
            "replicas": min((len(p["replicas"]) for p in partitions), default=0),
            "configs": {},
        }
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            name = resource["resource_name"]
            if resource["error_code"] != 0:
                raise _CannotDescribe(f"{name}: {for_code(resource['error_code']).__name__}")
            found[name]["configs"] = {
                entry["config_names"]: entry["config_value"] for entry in resource["config_entries"]
            }
    return found
