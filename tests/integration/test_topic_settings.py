"""Issue #18 item 13: topics that already exist are checked against events/topics.py.

On the real embedded broker (Tansu). Measured there: it answers DescribeConfigs with the
settings a topic was created with (not the broker's defaults), closes the connection when
a DescribeConfigs request names the settings it wants (so every setting is asked for), and
takes min.insync.replicas but, one broker alone, does not enforce it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError

from events.topics import DEAD_LETTERS, MIN_INSYNC, VIOLATIONS, Topic, blocklist_topic
from services.adapters.kafka import ensure_topics
from services.errors import BrokerError
from tests.conftest import Stack


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=stack.kafka, request_timeout_ms=10_000)
    await client.start()
    yield client
    await client.close()


def _like(topic: Topic) -> Topic:
    """A topic declared as `topic` is, under a name of this test's own."""
    return replace(topic, name=f"redline.test.{uuid.uuid4().hex[:12]}.v1")


async def _described(admin: AIOKafkaAdminClient, name: str) -> dict[str, str]:
    (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    (resource,) = response.to_object()["resources"]
    return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}


async def test_a_topic_created_with_wrong_partitions_is_refused_by_name(
    stack: Stack, admin: AIOKafkaAdminClient
) -> None:
    """The fault: someone (or an auto-create) made the topic with 1 partition; a case's
    events would be keyed onto other partitions than the consumers expect."""
    declared = _like(VIOLATIONS)
    kept = {k: v for k, v in declared.config.items() if k != MIN_INSYNC}
    await admin.create_topics([NewTopic(declared.name, 1, 1, topic_configs=kept)])
    with pytest.raises(BrokerError) as refused:
        await ensure_topics(stack.kafka, topics=(declared,))
    assert f"topic {declared.name}: partitions is 1, expected 6" in str(refused.value)
    assert "retention" not in str(refused.value)  # the settings that agree are not named


async def test_a_wrong_or_missing_setting_is_refused_naming_expected_and_actual(
    stack: Stack, admin: AIOKafkaAdminClient
) -> None:
    declared = _like(blocklist_topic("refuse_power_supply"))
    await admin.create_topics(
        [NewTopic(declared.name, 3, 1, topic_configs={"cleanup.policy": "delete"})]
    )
    with pytest.raises(BrokerError) as refused:
        await ensure_topics(stack.kafka, topics=(declared,))
    message = str(refused.value)
    assert f"topic {declared.name}: cleanup.policy is delete, expected compact" in message
    assert f"topic {declared.name}: delete.retention.ms is not set, expected 2592000000" in message
    assert "partitions" not in message


async def test_the_embedded_start_warns_and_carries_on(
    stack: Stack, admin: AIOKafkaAdminClient, caplog: pytest.LogCaptureFixture
) -> None:
    declared = _like(DEAD_LETTERS)
    await admin.create_topics([NewTopic(declared.name, 2, 1, topic_configs={})])
    with caplog.at_level(logging.WARNING, logger="redline.topics"):
        assert await ensure_topics(stack.kafka, topics=(declared,), embedded=True) == []
    assert f"topic {declared.name}: partitions is 2, expected 1" in caplog.text
    assert "embedded broker: not refused" in caplog.text


async def test_a_broker_that_cannot_describe_is_refused_in_production_warned_embedded(
    stack: Stack,
    admin: AIOKafkaAdminClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    declared = _like(DEAD_LETTERS)
    await ensure_topics(stack.kafka, topics=(declared,))  # created as declared

    async def hang_up(*_: object, **__: object) -> None:
        raise KafkaConnectionError("connection closed by the broker")

    monkeypatch.setattr(AIOKafkaAdminClient, "describe_configs", hang_up)
    with pytest.raises(BrokerError, match="cannot check the settings of existing topics"):
        await ensure_topics(stack.kafka, topics=(declared,))
    with caplog.at_level(logging.WARNING, logger="redline.topics"):
        await ensure_topics(stack.kafka, topics=(declared,), embedded=True)
    assert "the embedded broker's topics are not checked" in caplog.text


async def test_topics_created_as_declared_pass_the_check(
    stack: Stack, admin: AIOKafkaAdminClient
) -> None:
    declared = _like(VIOLATIONS)
    assert await ensure_topics(stack.kafka, topics=(declared,)) == [declared.name]
    assert await ensure_topics(stack.kafka, topics=(declared,)) == []  # checked, agreed
    # One replica: min.insync.replicas=2 would refuse every acks=all write, so it is left out.
    assert MIN_INSYNC not in await _described(admin, declared.name)


async def test_with_replicas_every_topic_gets_min_insync_replicas(
    stack: Stack, admin: AIOKafkaAdminClient
) -> None:
    """Tansu takes a replication factor above its one broker, which lets the production
    settings be created and checked here."""
    declared = _like(VIOLATIONS)
    await ensure_topics(stack.kafka, replication_factor=3, topics=(declared,))
    assert (await _described(admin, declared.name))[MIN_INSYNC] == "2"
    assert await ensure_topics(stack.kafka, replication_factor=3, topics=(declared,)) == []
    # A topic made with one replica is not good enough for a factor of 3.
    thin = _like(VIOLATIONS)
    await ensure_topics(stack.kafka, topics=(thin,))
    with pytest.raises(BrokerError) as refused:
        await ensure_topics(stack.kafka, replication_factor=3, topics=(thin,))
    assert f"topic {thin.name}: replication factor is 1, expected at least 3" in str(refused.value)
    assert f"topic {thin.name}: min.insync.replicas is not set, expected 2" in str(refused.value)
