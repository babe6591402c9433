"""`redline-connector`: run the subscriber daemon, check a subject, export or inspect the list.

Every option can also come from the environment as REDLINE_CONNECTOR_<OPTION> (e.g.
REDLINE_CONNECTOR_SUBJECT_KEY). Exit codes, so scripts and tills can act on them:

    0  clear (check; also when blocked only at another site), or done (run, export,
       status while fresh)
    1  blocked (check)
    2  bad input: a bad option, an invalid subject ID, a measure not served here, no site
       for a measure held against sites
    3  stale: the replica cannot vouch for the present (check, export, status)
    4  the replica or the broker failed
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from connectors.subscriber import cli_options as opt
from connectors.subscriber import replica as replica_file
from connectors.subscriber.access import (
    DEFAULT_CHECK_BURST,
    DEFAULT_CHECK_RATE,
    Access,
    RateLimiter,
    TokenSet,
    is_loopback,
)
from connectors.subscriber.cli_options import Bound, Measure, Replica, SubjectKey
from connectors.subscriber.config import SubscriberConfig
from connectors.subscriber.daemon import bind, serve
from connectors.subscriber.errors import ConfigError, ConnectorError, InvalidInput
from connectors.subscriber.freshness import DEFAULT_BOUND_SECONDS
from connectors.subscriber.results import Blocked, Stale
from connectors.subscriber.subjects import SubjectIds
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.view import BlocklistView
from events.logmask import mask_logging

EXIT_CLEAR = 0
EXIT_BLOCKED = 1
EXIT_BAD_INPUT = 2
EXIT_STALE = 3
EXIT_FAILED = 4

app = typer.Typer(
    help="Redline blocklist subscriber: a local replica of the blocks a utility or bank "
    "enforces, checked at the point of transaction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _option(field: str) -> str:
    return "--" + field.replace("_", "-")


def _fail(code: int, message: str) -> NoReturn:
    typer.echo(f"redline-connector: {message}", err=True)
    raise typer.Exit(code)


def _refuse(exc: ConnectorError) -> NoReturn:
    if isinstance(exc, ConfigError | InvalidInput):
        _fail(EXIT_BAD_INPUT, f"{_option(exc.field)}: {exc.reason}")
    _fail(EXIT_FAILED, str(exc))


def _print(body: Any) -> None:
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2))


def _view(replica: Path, subject_key: Path, bound: float) -> BlocklistView:
    if not 0 < bound <= 86_400:
        raise ConfigError("freshness_bound", f"must be between 0 and 86400 seconds, got {bound}")
    held = replica_file.Replica.open(replica)
    try:
        measures = held.measures()
    finally:
        held.close()
    ids = SubjectIds.for_measures(subject_key, measures)
    return BlocklistView(replica, ids, measures or None, bound, preload=False)


def _access(tokens: Path | None, no_auth: bool, host: str, rate: float, burst: int) -> Access:
    """Tokens from the file, or none only when asked for in so many words, on loopback."""
    limiter = RateLimiter(rate, burst)
    if tokens is not None:
        if no_auth:
            raise ConfigError("no_auth", "give either --api-tokens or --no-auth, not both")
        return Access(TokenSet.load(tokens), limiter)
    if not no_auth:
        raise ConfigError(
            "api_tokens",
            "required: a file of the SHA-256 hashes of the check API's bearer tokens "
            "(or --no-auth, for a demo listening on loopback only)",
        )
    if not is_loopback(host):
        raise ConfigError(
            "no_auth", f"only on a loopback host (127.0.0.1, ::1, localhost), not {host}"
        )
    return Access.open(limiter)


def _auth_note(access: Access) -> str:
    if access.tokens is None:
        return "NO AUTHENTICATION (--no-auth)"
    return f"{len(access.tokens)} API token(s)"


def _tls(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """Both PEM files or neither, loaded once here so a bad one is named before serving."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        missing = "tls_cert" if cert is None else "tls_key"
        raise ConfigError(missing, "the certificate and its key go together: give both")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("tls_cert", f"cannot load {cert} with key {key}: {exc}") from None
    return cert, key


def _api_version(value: str | None) -> tuple[int, ...] | None:
    if not value:
        return None
    try:
        return tuple(int(part) for part in value.split("."))
    except ValueError:
        raise ConfigError("kafka_api_version", f"{value!r} is not a version like 2.8.0") from None


@app.command()
def run(
    *,
    name: opt.Name,
    measures: opt.Measures,
    bootstrap: opt.Bootstrap,
    replica: Replica,
    trust_store: opt.TrustStore,
    subject_key: SubjectKey,
    signing_key: opt.SigningKey = None,
    signing_key_id: opt.SigningKeyId = None,
    freshness_bound: Bound = DEFAULT_BOUND_SECONDS,
    webhook_url: opt.WebhookUrl = None,
    host: opt.Host = "127.0.0.1",
    port: opt.Port = 8470,
    api_tokens: opt.ApiTokens = None,
    no_auth: opt.NoAuth = False,
    check_rate: opt.CheckRate = DEFAULT_CHECK_RATE,
    check_burst: opt.CheckBurst = DEFAULT_CHECK_BURST,
    tls_cert: opt.TlsCert = None,
    tls_key: opt.TlsKey = None,
    kafka_api_version: opt.KafkaApiVersion = None,
    kafka_username: opt.KafkaUsername = None,
    kafka_password: opt.KafkaPassword = None,
    kafka_sasl_mechanism: opt.KafkaSaslMechanism = "SCRAM-SHA-512",
    kafka_tls: opt.KafkaTls = False,
    log_level: opt.LogLevel = "INFO",
) -> None:
    """Run the daemon: keep the replica current and serve the check API until SIGTERM."""
    _configure_logging(log_level)
    try:
        config = SubscriberConfig(
            name=name,
            measures=tuple(measures.split(",")),
            bootstrap=bootstrap,
            replica=replica,
            trust_store=trust_store,
            subject_key=subject_key,
            signing_key=signing_key,
            signing_key_id=signing_key_id,
            freshness_bound=freshness_bound,
            webhook_url=webhook_url,
            kafka_api_version=_api_version(kafka_api_version),
            kafka_username=kafka_username or None,
            kafka_password=kafka_password or None,
            kafka_sasl_mechanism=kafka_sasl_mechanism,
            kafka_tls=kafka_tls,
        )
        access = _access(api_tokens, no_auth, host, check_rate, check_burst)
        tls = _tls(tls_cert, tls_key)
        subscriber = Subscriber(config)
        sock = bind(host, port)
    except ConnectorError as exc:
        _refuse(exc)
    try:
        serve(subscriber, sock, access=access, tls=tls, announce=_announcer(config, access))
    except ConnectorError as exc:
        _refuse(exc)


def _announcer(config: SubscriberConfig, access: Access) -> Callable[[str], None]:
    """What `serve` prints once listening: who serves what, where, and under which auth."""

    def announce(address: str) -> None:
        typer.echo(
            f"redline-connector {config.name}: serving {address} "
            f"(measures {', '.join(config.measures)}; replica {config.replica}; "
            f"{_auth_note(access)})",
        )
        sys.stdout.flush()

    return announce


def _configure_logging(log_level: str) -> None:
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        _fail(EXIT_BAD_INPUT, f"--log-level: unknown level {log_level!r}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mask_logging()
    if level > logging.DEBUG:
        # kafka-python logs every refused connection as an ERROR; the consumer and senders
        # log one warning per failure themselves and health reports the last error.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)


@app.command()
def check(
    *,
    measure: Measure,
    subject: Annotated[
        str, typer.Option("--subject", help="The USCC or resident ID number presented.")
    ],
    replica: Replica,
    subject_key: SubjectKey,
    site: Annotated[
        str | None,
        typer.Option(
            "--site",
            help="Where the supply is asked for: real-estate unit code, else parcel code, else "
            "the address. Required for water, power and gas; ignored for loans.",
        ),
    ] = None,
    freshness_bound: Bound = DEFAULT_BOUND_SECONDS,
) -> None:
    """Check one subject (at a site) against the replica: exit 0 clear (also when blocked
    only at another site), 1 blocked, 2 bad input, 3 stale."""
    try:
        result = _view(replica, subject_key, freshness_bound).check(measure, subject, site)
    except ConnectorError as exc:
        _refuse(exc)
    _print(result.as_json())
    if isinstance(result, Stale):
        raise typer.Exit(EXIT_STALE)
    raise typer.Exit(EXIT_BLOCKED if isinstance(result, Blocked) else EXIT_CLEAR)


@app.command()
def export(
    measure: Measure,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write, or - for stdout.")],
    replica: Replica,
    subject_key: SubjectKey,
    freshness_bound: Bound = DEFAULT_BOUND_SECONDS,
) -> None:
    """Write the current list of a measure as CSV (exit 3, after writing, if stale)."""
    try:
        view = _view(replica, subject_key, freshness_bound)
        if not view.serves(measure):
            raise view.unserved(measure)
        fresh = view.freshness(measure)
        if str(out) == "-":
            rows = view.export_csv(measure, sys.stdout)
        else:
            with out.open("w", encoding="utf-8", newline="") as handle:
                rows = view.export_csv(measure, handle)
    except OSError as exc:
        _fail(EXIT_BAD_INPUT, f"--out: cannot write {out}: {exc}")
    except ConnectorError as exc:
        _refuse(exc)
    typer.echo(f"{rows} blocked subjects of {measure} written to {out}", err=True)
    if fresh.stale:
        _fail(EXIT_STALE, f"warning: the list is stale (watermark age {fresh.age_seconds})")


@app.command()
def status(
    replica: Replica,
    subject_key: SubjectKey,
    freshness_bound: Bound = DEFAULT_BOUND_SECONDS,
) -> None:
    """Print watermarks, offsets, counts and queues as JSON (exit 3 when stale)."""
    try:
        health = _view(replica, subject_key, freshness_bound).health()
    except ConnectorError as exc:
        _refuse(exc)
    _print(health)
    if health["status"] == "stale":
        raise typer.Exit(EXIT_STALE)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
