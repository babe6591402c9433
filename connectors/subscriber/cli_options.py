"""The command-line options of `redline-connector`, each with the environment variable it
can also come from (REDLINE_CONNECTOR_<OPTION>), declared once here so each command reads
as what it does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer


def env(flag: str) -> str:
    """The environment variable an option also comes from: `--signing-key` is
    REDLINE_CONNECTOR_SIGNING_KEY."""
    return "REDLINE_CONNECTOR_" + flag.removeprefix("--").replace("-", "_").upper()


def option(flag: str, text: str | None = None, *, also: str | None = None, **more: Any) -> Any:
    """The option `flag` with its help `text`, also read from env(flag), then from `also`;
    `more` goes to typer.Option as it is (min, max)."""
    envvar = env(flag) if also is None else [env(flag), also]
    return typer.Option(flag, envvar=envvar, help=text, **more)


Replica = Annotated[Path, option("--replica", "The replica SQLite file.")]
SubjectKey = Annotated[
    Path,
    option(
        "--subject-key", "The deployment's subject key file (hex), to hash IDs as the builder does."
    ),
]
Bound = Annotated[
    float,
    option(
        "--freshness-bound", "Seconds after the last heartbeat beyond which answers are 'stale'."
    ),
]
Measure = Annotated[str, option("--measure", "e.g. refuse_power_supply")]
Name = Annotated[str, option("--name", "This subscriber's authority code (who it signs as).")]
Measures = Annotated[
    str, option("--measures", "Comma-separated measures it enforces, e.g. refuse_power_supply.")
]
Bootstrap = Annotated[str, option("--bootstrap", "host:port", also="KAFKA_BOOTSTRAP")]
TrustStore = Annotated[Path, option("--trust-store", "Trust store YAML.")]
SigningKey = Annotated[
    Path | None,
    option("--signing-key", "Ed25519 private key PEM: sign acknowledgements and dead letters."),
]
SigningKeyId = Annotated[str | None, option("--signing-key-id", "Its key id.")]
WebhookUrl = Annotated[str | None, option("--webhook-url", "POST every change here.")]
Host = Annotated[str, option("--host")]
Port = Annotated[int, option("--port", min=0, max=65535)]
ApiTokens = Annotated[
    Path | None,
    option(
        "--api-tokens",
        "YAML file of the check API's bearer tokens, as SHA-256 hashes (tokens: [{name, sha256}]).",
    ),
]
NoAuth = Annotated[
    bool, option("--no-auth", "Serve checks without tokens: a demo on a loopback --host only.")
]
CheckRate = Annotated[float, option("--check-rate", "Checks a second per token.")]
CheckBurst = Annotated[int, option("--check-burst", "Checks at once per token.")]
TlsCert = Annotated[Path | None, option("--tls-cert", "Serve HTTPS: certificate chain PEM.")]
TlsKey = Annotated[Path | None, option("--tls-key", "Its private key PEM.")]
KafkaApiVersion = Annotated[
    str | None,
    option(
        "--kafka-api-version",
        "Pin the Kafka protocol version (e.g. 2.8.0) instead of probing the broker.",
    ),
]
KafkaUsername = Annotated[str | None, option("--kafka-username", "SASL/SCRAM user, if any.")]
KafkaPassword = Annotated[
    str | None,
    option(
        "--kafka-password", "Its password (prefer the environment variable: options show in ps)."
    ),
]
KafkaSaslMechanism = Annotated[str, option("--kafka-sasl-mechanism")]
KafkaTls = Annotated[bool, option("--kafka-tls", "SASL_SSL.")]
LogLevel = Annotated[str, option("--log-level")]
