"""The command-line options of `redline-connector`, each with the environment variable it
can also come from (REDLINE_CONNECTOR_<OPTION>), declared once here so each command reads
as what it does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def env(name: str) -> str:
    return f"REDLINE_CONNECTOR_{name}"


Replica = Annotated[
    Path, typer.Option("--replica", envvar=env("REPLICA"), help="The replica SQLite file.")
]
SubjectKey = Annotated[
    Path,
    typer.Option(
        "--subject-key",
        envvar=env("SUBJECT_KEY"),
        help="The deployment's subject key file (hex), to hash IDs as the builder does.",
    ),
]
Bound = Annotated[
    float,
    typer.Option(
        "--freshness-bound",
        envvar=env("FRESHNESS_BOUND"),
        help="Seconds after the last heartbeat beyond which answers are 'stale'.",
    ),
]
Measure = Annotated[
    str, typer.Option("--measure", envvar=env("MEASURE"), help="e.g. refuse_power_supply")
]
Name = Annotated[
    str,
    typer.Option(
        "--name", envvar=env("NAME"), help="This subscriber's authority code (who it signs as)."
    ),
]
Measures = Annotated[
    str,
    typer.Option(
        "--measures",
        envvar=env("MEASURES"),
        help="Comma-separated measures it enforces, e.g. refuse_power_supply.",
    ),
]
Bootstrap = Annotated[
    str, typer.Option("--bootstrap", envvar=[env("BOOTSTRAP"), "KAFKA_BOOTSTRAP"], help="host:port")
]
TrustStore = Annotated[
    Path, typer.Option("--trust-store", envvar=env("TRUST_STORE"), help="Trust store YAML.")
]
SigningKey = Annotated[
    Path | None,
    typer.Option(
        "--signing-key",
        envvar=env("SIGNING_KEY"),
        help="Ed25519 private key PEM: sign acknowledgements and dead letters.",
    ),
]
SigningKeyId = Annotated[
    str | None, typer.Option("--signing-key-id", envvar=env("SIGNING_KEY_ID"), help="Its key id.")
]
WebhookUrl = Annotated[
    str | None,
    typer.Option("--webhook-url", envvar=env("WEBHOOK_URL"), help="POST every change here."),
]
Host = Annotated[str, typer.Option("--host", envvar=env("HOST"))]
Port = Annotated[int, typer.Option("--port", envvar=env("PORT"), min=0, max=65535)]
ApiTokens = Annotated[
    Path | None,
    typer.Option(
        "--api-tokens",
        envvar=env("API_TOKENS"),
        help="YAML file of the check API's bearer tokens, as SHA-256 hashes "
        "(tokens: [{name, sha256}]).",
    ),
]
NoAuth = Annotated[
    bool,
    typer.Option(
        "--no-auth",
        envvar=env("NO_AUTH"),
        help="Serve checks without tokens: a demo on a loopback --host only.",
    ),
]
CheckRate = Annotated[
    float,
    typer.Option("--check-rate", envvar=env("CHECK_RATE"), help="Checks a second per token."),
]
CheckBurst = Annotated[
    int,
    typer.Option("--check-burst", envvar=env("CHECK_BURST"), help="Checks at once per token."),
]
TlsCert = Annotated[
    Path | None,
    typer.Option("--tls-cert", envvar=env("TLS_CERT"), help="Serve HTTPS: certificate chain PEM."),
]
TlsKey = Annotated[
    Path | None, typer.Option("--tls-key", envvar=env("TLS_KEY"), help="Its private key PEM.")
]
KafkaApiVersion = Annotated[
    str | None,
    typer.Option(
        "--kafka-api-version",
        envvar=env("KAFKA_API_VERSION"),
        help="Pin the Kafka protocol version (e.g. 2.8.0) instead of probing the broker.",
    ),
]
KafkaUsername = Annotated[
    str | None,
    typer.Option("--kafka-username", envvar=env("KAFKA_USERNAME"), help="SASL/SCRAM user, if any."),
]
KafkaPassword = Annotated[
    str | None,
    typer.Option(
        "--kafka-password",
        envvar=env("KAFKA_PASSWORD"),
        help="Its password (prefer the environment variable: options show in ps).",
    ),
]
KafkaSaslMechanism = Annotated[
    str, typer.Option("--kafka-sasl-mechanism", envvar=env("KAFKA_SASL_MECHANISM"))
]
KafkaTls = Annotated[bool, typer.Option("--kafka-tls", envvar=env("KAFKA_TLS"), help="SASL_SSL.")]
LogLevel = Annotated[str, typer.Option("--log-level", envvar=env("LOG_LEVEL"))]
