"""The Compose stack: Kafka, PostgreSQL, every Redline process with the environment
`make run` gives it, the demo, Prometheus and Grafana."""

from __future__ import annotations

from deploy.manifests.common import (
    COMPOSE_DATABASE,
    COMPOSE_KAFKA,
    DOCKERFILE,
    GRAFANA_IMAGE,
    KAFKA_IMAGE,
    LOCAL_IMAGE,
    POSTGRES_IMAGE,
    PROMETHEUS_IMAGE,
    RELAY_BATCH,
    SUBJECT_KEY_FILE,
    TIMEZONE,
    TRUST_STORE_FILE,
    Json,
)
from deploy.model import (
    ALL_INTERFACES,
    API_PORT,
    CONNECTOR_PORT,
    HOME,
    Process,
    server_processes,
    subscriber_processes,
)
from events.catalogue import Catalogue
from services.runtime.embedded import SERVER_SETTINGS

BUILD: Json = {"context": "../..", "dockerfile": DOCKERFILE}
# Where the demo service mounts the checkout's demo/ (the image leaves the demo out).
DEMO_DIR = "/opt/redline-demo"


def compose_environment(process: Process) -> dict[str, str]:
    """The variables `make run` gives the process, with the Compose servers' addresses."""
    if process.component == "subscriber":
        return _connector_environment(process)
    env = {
        "KAFKA_BOOTSTRAP": COMPOSE_KAFKA,
        "DATABASE_URL": COMPOSE_DATABASE,
        "REDLINE_HOME": HOME,
        "REDLINE_KAFKA_REPLICATION": "1",
        "REDLINE_TIMEZONE": TIMEZONE,
        "REDLINE_TRUST_STORE": f"{HOME}/{TRUST_STORE_FILE}",
        # The Compose stack is a development one: its redline-init writes development keys,
        # which a service on external servers uses only when told so.
        "REDLINE_DEV_KEYS": "1",
    }
    if process.subject_key:
        env["REDLINE_SUBJECT_KEY"] = f"{HOME}/keys/{SUBJECT_KEY_FILE}"
    if process.component == "relay":
        env["REDLINE_RELAY_BATCH"] = RELAY_BATCH
    if process.component == "api":
        env["REDLINE_API_PORT"] = str(API_PORT)
        env["REDLINE_API_HOST"] = ALL_INTERFACES
    else:
        env["REDLINE_METRICS_PORT"] = str(process.port)
        env["REDLINE_METRICS_HOST"] = ALL_INTERFACES
    return env


def _connector_environment(process: Process) -> dict[str, str]:
    # The connector reads REDLINE_CONNECTOR_<OPTION> (connectors/subscriber/cli.py).
    name = process.signs_as or ""
    return {
        "REDLINE_CONNECTOR_NAME": name,
        "REDLINE_CONNECTOR_MEASURES": ",".join(process.measures),
        "REDLINE_CONNECTOR_BOOTSTRAP": COMPOSE_KAFKA,
        "REDLINE_CONNECTOR_REPLICA": f"{HOME}/subscribers/{name}/replica.sqlite",
        "REDLINE_CONNECTOR_TRUST_STORE": f"{HOME}/{TRUST_STORE_FILE}",
        "REDLINE_CONNECTOR_SUBJECT_KEY": f"{HOME}/keys/{SUBJECT_KEY_FILE}",
        # Written by redline-init (development tokens, the raw one beside it in api.token).
        "REDLINE_CONNECTOR_API_TOKENS": f"{SUBSCRIBER_TOKENS_DIR}/api-tokens.yaml",
        # The development keys the init container made (services/runtime/devkeys.py).
        "REDLINE_CONNECTOR_SIGNING_KEY": f"{HOME}/keys/{name}-dev.pem",
        "REDLINE_CONNECTOR_SIGNING_KEY_ID": f"{name}-dev",
        "REDLINE_CONNECTOR_HOST": ALL_INTERFACES,
        "REDLINE_CONNECTOR_PORT": str(CONNECTOR_PORT),
    }


SUBSCRIBER_TOKENS_DIR = f"{HOME}/subscribers"
_INIT_SCRIPT = f"""\
python -c 'from pathlib import Path; from services.runtime.devkeys import ensure_dev_keys; \
print("development keys and trust store:", ensure_dev_keys(Path("{HOME}")))'
python -c 'from pathlib import Path; from connectors.subscriber.access import ensure_dev_tokens; \
print("subscriber API tokens:", ensure_dev_tokens(Path("{SUBSCRIBER_TOKENS_DIR}")))'
redline migrate
redline topics
"""


def _redline_service(command: list[str], env: dict[str, str]) -> Json:
    return {
        "image": LOCAL_IMAGE,
        "build": dict(BUILD),
        "command": command,
        "environment": env,
        "volumes": [f"redline-home:{HOME}"],
        "restart": "unless-stopped",
    }


def _servers() -> Json:
    """Kafka (KRaft, one node) and PostgreSQL, reachable from the host on loopback only."""
    return {
        "kafka": {
            "image": KAFKA_IMAGE,
            "environment": {
                "CLUSTER_ID": "UmVkbGluZUNvbXBvc2UwMQ",  # base64url of 16 bytes, as Kafka wants
                "KAFKA_NODE_ID": "1",
                "KAFKA_PROCESS_ROLES": "broker,controller",
                "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093,HOST://:29092",
                "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092,HOST://localhost:29092",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,HOST:PLAINTEXT"
                ),
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
                "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
                "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
                "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
            },
            "volumes": ["kafka-data:/var/lib/kafka/data"],
            "ports": ["127.0.0.1:29092:29092"],
            "healthcheck": {
                "test": [
                    "CMD-SHELL",
                    "/opt/kafka/bin/kafka-broker-api-versions.sh "
                    "--bootstrap-server localhost:9092 > /dev/null",
                ],
                "interval": "10s",
                "timeout": "10s",
                "retries": 12,
                "start_period": "20s",
            },
            "restart": "unless-stopped",
        },
        "postgres": {
            "image": POSTGRES_IMAGE,
            # The embedded server's settings (autovacuum every 10 s: see SERVER_SETTINGS).
            "command": ["postgres", *(a for s in SERVER_SETTINGS for a in ("-c", s))],
            "environment": {
                "POSTGRES_USER": "redline",
                "POSTGRES_PASSWORD": "redline",
                "POSTGRES_DB": "redline",
            },
            "volumes": ["postgres-data:/var/lib/postgresql/data"],
            "ports": ["127.0.0.1:5432:5432"],
            "healthcheck": {
                "test": ["CMD-SHELL", "pg_isready -U redline -d redline"],
                "interval": "5s",
                "timeout": "5s",
                "retries": 20,
            },
            "restart": "unless-stopped",
        },
    }


def _observability() -> Json:
    """Prometheus, scraping every process, and Grafana with the generated dashboards."""
    services: Json = {}
    services["prometheus"] = {
        "image": PROMETHEUS_IMAGE,
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.enable-lifecycle",
        ],
        "volumes": [
            "../prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            "../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
            "./prometheus/targets.json:/etc/prometheus/targets.json:ro",
            "prometheus-data:/prometheus",
        ],
        "ports": ["127.0.0.1:9090:9090"],
        "restart": "unless-stopped",
    }
    services["grafana"] = {
        "image": GRAFANA_IMAGE,
        "environment": {
            "GF_AUTH_ANONYMOUS_ENABLED": "true",
            "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
            "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH": (
                "/var/lib/grafana/dashboards/core/redline-overview.json"
            ),
            # A government network reaches no public host: Grafana calls none.
            "GF_ANALYTICS_REPORTING_ENABLED": "false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
            "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
            "GF_NEWS_NEWS_FEED_ENABLED": "false",
            "GF_SECURITY_DISABLE_GRAVATAR": "true",
            "GF_SNAPSHOTS_EXTERNAL_ENABLED": "false",
        },
        "volumes": [
            "../grafana/provisioning:/etc/grafana/provisioning:ro",
            "../grafana/dashboards:/var/lib/grafana/dashboards:ro",
            "grafana-data:/var/lib/grafana",
        ],
        "ports": ["127.0.0.1:3000:3000"],
        "depends_on": ["prometheus"],
        "restart": "unless-stopped",
    }
    return services


def _setup_environment(catalogue: Catalogue) -> dict[str, str]:
    """What redline-init and the demo need: the servers and the keys, no metrics port."""
    return {
        key: value
        for key, value in compose_environment(server_processes(catalogue)[0]).items()
        if not key.startswith(("REDLINE_METRICS", "REDLINE_RELAY"))
    }


def _redline(catalogue: Catalogue) -> Json:
    """redline-init, then every server process and demo subscriber once it has run."""
    init = _redline_service(["sh", "-ec", _INIT_SCRIPT], _setup_environment(catalogue))
    init["restart"] = "no"
    init["depends_on"] = {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    services: Json = {"redline-init": init}
    ready = {"redline-init": {"condition": "service_completed_successfully"}}
    for process in server_processes(catalogue):
        service = _redline_service(list(process.command), compose_environment(process))
        service["depends_on"] = dict(ready)
        if process.component == "api":
            service["ports"] = [f"127.0.0.1:{API_PORT}:{API_PORT}"]
        else:
            service["expose"] = [str(process.port)]
        services[process.name] = service
    for i, process in enumerate(subscriber_processes(catalogue)):
        service = _redline_service(list(process.command), compose_environment(process))
        service["depends_on"] = dict(ready)
        service["ports"] = [f"127.0.0.1:{CONNECTOR_PORT + 1 + i}:{CONNECTOR_PORT}"]
        services[process.name] = service
    services["demo"] = _demo(_setup_environment(catalogue), ready)
    return services


def _demo(env: dict[str, str], ready: Json) -> Json:
    """The demo feed: the same image, which carries no demo, with the checkout's demo/
    mounted read-only beside the working directory that `python -m` puts on the path."""
    command = ["python", "-m", "services.entrypoints.cli", "demo", "--interval", "2"]
    demo = _redline_service(command, env)
    demo["volumes"].append(f"../../demo:{DEMO_DIR}/demo:ro")
    demo.update(
        {"working_dir": DEMO_DIR, "profiles": ["demo"], "restart": "no", "depends_on": dict(ready)}
    )
    return demo


def compose(catalogue: Catalogue) -> Json:
    services = {**_servers(), **_redline(catalogue), **_observability()}
    return {
        "name": "redline",
        "services": services,
        "volumes": {
            name: {}
            for name in (
                "redline-home",
                "kafka-data",
                "postgres-data",
                "prometheus-data",
                "grafana-data",
            )
        },
    }


def compose_targets(catalogue: Catalogue) -> list[Json]:
    """Prometheus file_sd targets for Compose, in the format `make run` writes."""
    processes = [*server_processes(catalogue), *subscriber_processes(catalogue)]
    return [
        {"targets": [f"{process.name}:{process.port}"], "labels": {"service": process.name}}
        for process in processes
    ]
