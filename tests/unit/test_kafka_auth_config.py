"""Kafka SASL settings: the services' environment and the connector's options are refused
naming the setting when half given or unsupported, and become the clients' keyword
arguments (aiokafka, faust, kafka-python) when whole. Pure: no broker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types.auth import AuthProtocol, SASLMechanism

import connectors.subscriber.errors as connector_errors
from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.feeder import kafka_options
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import Deployment
from services.adapters.kafka import client_options
from services.config import KafkaAuth, load_settings
from services.entrypoints.department import faust_credentials
from services.errors import ConfigError

LOGIN = {"REDLINE_KAFKA_USERNAME": "dept_power", "REDLINE_KAFKA_PASSWORD": "s3cret"}


def test_no_login_means_no_sasl() -> None:
    settings = load_settings({})
    assert settings.kafka_auth is None
    assert client_options(None) == {}
    assert faust_credentials(None) is None


def test_a_login_defaults_to_scram_sha_512_in_plaintext() -> None:
    auth = load_settings(LOGIN).kafka_auth
    assert auth == KafkaAuth("dept_power", "s3cret", "SCRAM-SHA-512", tls=False)
    assert "s3cret" not in repr(auth)
    assert client_options(auth) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "dept_power",
        "sasl_plain_password": "s3cret",
    }
    credentials = faust_credentials(auth)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert (credentials.username, credentials.password) == ("dept_power", "s3cret")


def test_tls_makes_it_sasl_ssl_everywhere() -> None:
    auth = load_settings(
        {**LOGIN, "REDLINE_KAFKA_SASL_MECHANISM": "scram-sha-256", "REDLINE_KAFKA_TLS": "on"}
    ).kafka_auth
    assert auth is not None and auth.mechanism == "SCRAM-SHA-256"
    options = client_options(auth)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["ssl_context"] is not None
    credentials = faust_credentials(auth)
    assert credentials is not None and credentials.protocol is AuthProtocol.SASL_SSL


@pytest.mark.parametrize(
    ("env", "named", "why"),
    [
        ({"REDLINE_KAFKA_USERNAME": "dept_power"}, "REDLINE_KAFKA_PASSWORD", "needs its password"),
        ({"REDLINE_KAFKA_PASSWORD": "s3cret"}, "REDLINE_KAFKA_PASSWORD", "USERNAME is not"),
        (
            {"REDLINE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
            "REDLINE_KAFKA_SASL_MECHANISM",
            "USERNAME is not",
        ),
        ({"REDLINE_KAFKA_TLS": "on"}, "REDLINE_KAFKA_TLS", "needs REDLINE_KAFKA_USERNAME"),
        ({**LOGIN, "REDLINE_KAFKA_SASL_MECHANISM": "PLAIN"}, "MECHANISM must be one of", "PLAIN"),
        ({**LOGIN, "REDLINE_KAFKA_TLS": "maybe"}, "REDLINE_KAFKA_TLS", "on or off"),
    ],
)
def test_a_half_or_unsupported_login_is_refused_naming_the_variable(
    env: dict[str, str], named: str, why: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    assert named in str(refused.value)
    assert why in str(refused.value)


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return Deployment.create(tmp_path, "power_supply_demo_subscriber")


def connector_config(deployment: Deployment, **login: Any) -> SubscriberConfig:
    """The deployment's config with a login; `replace` validates it again."""
    base = deployment.config("power_supply_demo_subscriber", ("refuse_power_supply",))
    return replace(base, **login)


def test_the_connector_logs_in_with_its_own_user(deployment: Deployment) -> None:
    config = connector_config(
        deployment, kafka_username="power_supply_demo_subscriber", kafka_password="pw"
    )
    assert "pw" not in repr(config)
    options = kafka_options(Subscriber(config))
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "power_supply_demo_subscriber"
    assert options["sasl_plain_password"] == "pw"
    assert "security_protocol" not in kafka_options(Subscriber(connector_config(deployment)))


@pytest.mark.parametrize(
    ("login", "field"),
    [
        ({"kafka_username": "power"}, "kafka_password"),
        ({"kafka_password": "pw"}, "kafka_username"),
        ({"kafka_username": " ", "kafka_password": "pw"}, "kafka_username"),
        ({"kafka_tls": True}, "kafka_tls"),
        (
            {"kafka_username": "power", "kafka_password": "pw", "kafka_sasl_mechanism": "PLAIN"},
            "kafka_sasl_mechanism",
        ),
    ],
)
def test_the_connector_refuses_a_half_login_naming_the_field(
    deployment: Deployment, login: dict[str, object], field: str
) -> None:
    with pytest.raises(connector_errors.ConfigError) as refused:
        connector_config(deployment, **login)
    assert refused.value.field == field
