"""The deploy files agree with the code: images, environment, ports, departments, topics,
metric names, thresholds, and the generated files are up to date. Pure: reads files only.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

import services.metrics
from connectors.subscriber import cli_options
from deploy import generate
from deploy.acls import kafka_users
from deploy.dashboards import DATASOURCE, all_dashboards, department_uid, panel_queries
from deploy.manifests import DOCKERFILE, signing_secret
from deploy.model import (
    DATASOURCE_UID,
    JOB,
    OUTBOX_AGE_ALERT_SECONDS,
    STALENESS_BOUND_SECONDS,
    server_processes,
    subscriber_processes,
)
from events.catalogue import load_catalogue
from events.topics import ALL_TOPICS
from services.access import TokenStore
from services.config import REPO_ROOT, load_settings
from services.runtime.embedded import SERVER_SETTINGS

DEPLOY = REPO_ROOT / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
COMPOSE_TARGETS = DEPLOY / "compose" / "prometheus" / "targets.json"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
K8S = DEPLOY / "k8s"
GRAFANA = DEPLOY / "grafana"

# Official images Compose may pull, each pinned to a version (never `latest`).
ALLOWED_IMAGES = {"apache/kafka", "postgres", "prom/prometheus", "grafana/grafana", "python"}
PINNED_TAG = re.compile(r"^v?\d+\.\d+(\.\d+)?([.-][a-z0-9.-]+)?$")

# Metrics that are not in services/metrics.py: the subscriber connector's, and Prometheus'.
SUBSCRIBER_METRICS = {
    "redline_subscriber_staleness_seconds": {"subscriber", "measure"},
    "redline_subscriber_quarantined_messages": {"subscriber", "queue"},
}
PROMETHEUS_METRICS = {"up": set[str]()}
TARGET_LABELS = {"job", "instance", "service", "process"}


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _parsed(path: Path) -> tuple[Any, ...]:
    """Each file parsed once per run (read only by the tests): parsing every manifest again
    for each process made two tests take ten seconds each."""
    return tuple(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_Loader))


def load(path: Path) -> Any:
    (document,) = _parsed(path)
    return document


def load_all(path: Path) -> list[Any]:
    return [doc for doc in _parsed(path) if doc]


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = load(COMPOSE)["services"]
    return services


def repo_services() -> dict[str, Any]:
    """Compose services built from this repository's Dockerfile."""
    return {name: s for name, s in compose_services().items() if "build" in s}


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in load_all(path):
            yield path, doc


def deployments() -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for path, doc in k8s_documents()
        if doc["kind"] == "Deployment" and "examples" not in path.parts
    }


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def env_of(item: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in item["env"]}


def config_map() -> dict[str, str]:
    data: dict[str, str] = load_all(K8S / "config.yaml")[0]["data"]
    return data


# -- Environment variables the code reads --------------------------------------------------

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _is_env(node: ast.expr) -> bool:
    """`env`, `environ` or `os.environ`: the names the code reads the environment through."""
    if isinstance(node, ast.Name):
        return node.id in {"env", "environ"}
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _constant(node: ast.expr) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    return set()


def connector_option_names() -> set[str]:
    """The variables the connector's options also come from, as typer is given them (each
    is derived from its flag, so the source names no variable literally)."""
    names: set[str] = set()
    for alias in vars(cli_options).values():
        for info in getattr(alias, "__metadata__", ()):
            envvar = getattr(info, "envvar", None)
            names |= {envvar} if isinstance(envvar, str) else set(envvar or ())
    return names


def _reads_one(func: ast.expr) -> bool:
    if isinstance(func, ast.Attribute):
        return (func.attr == "get" and _is_env(func.value)) or func.attr == "getenv"
    return isinstance(func, ast.Name) and func.id == "getenv"


def _names_read(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _is_env(node.value):
            names |= _constant(node.slice)
        if not isinstance(node, ast.Call):
            continue
        if _reads_one(node.func) and node.args:  # env.get("NAME"), os.getenv("NAME")
            names |= _constant(node.args[0])
        elif any(_is_env(arg) for arg in node.args):  # e.g. _positive(env, "NAME", 1)
            names |= {name for arg in node.args for name in _constant(arg)}
    return names


@cache
def env_names_read() -> frozenset[str]:
    """Every environment variable services/ and connectors/ read, from their source and
    the connector's options."""
    names = connector_option_names()
    for package in ("services", "connectors"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            names |= _names_read(ast.parse(path.read_text(encoding="utf-8")))
    return frozenset(name for name in names if ENV_NAME.match(name))


def test_the_environment_is_read_from_the_source() -> None:
    names = env_names_read()
    for name in (
        "KAFKA_BOOTSTRAP",
        "DATABASE_URL",
        "REDLINE_HOME",
        "REDLINE_KAFKA_REPLICATION",
        "REDLINE_SIGNING_KEY",
        "REDLINE_SIGNING_KEY_ID",
        "REDLINE_TIMEZONE",
        "REDLINE_API_PORT",
        "REDLINE_API_TOKENS",
        "REDLINE_RELAY_BATCH",
        "REDLINE_TRUST_STORE",
        "REDLINE_SUBJECT_KEY",
        "REDLINE_METRICS_PORT",
        "REDLINE_METRICS_HOST",
    ):
        assert name in names, name
    assert any(name.startswith("REDLINE_CONNECTOR_") for name in names)


def test_compose_sets_only_variables_the_code_reads() -> None:
    known = env_names_read()
    for name, service in repo_services().items():
        unknown = set(service["environment"]) - known
        assert not unknown, f"compose service {name} sets {sorted(unknown)}: nothing reads them"


def test_kubernetes_sets_only_variables_the_code_reads() -> None:
    known = env_names_read()
    assert not set(config_map()) - known
    for name, deployment in deployments().items():
        unknown = set(env_of(container(deployment))) - known
        assert not unknown, f"Deployment {name} sets {sorted(unknown)}: nothing reads them"
        refs = container(deployment)["envFrom"]
        assert refs == [{"configMapRef": {"name": "redline-env"}}]
        for init in deployment["spec"]["template"]["spec"].get("initContainers", []):
            assert not set(env_of(init)) - known, (name, init["name"])


def test_schema_and_topics_are_prepared_with_commands_the_cli_has() -> None:
    cli = ast.parse((REPO_ROOT / "services" / "entrypoints" / "cli.py").read_text())
    commands = {
        node.name
        for node in ast.walk(cli)
        if isinstance(node, ast.FunctionDef)
        and any("command" in ast.unparse(d) for d in node.decorator_list)
    }
    assert {"migrate", "topics"} <= commands
    init = compose_services()["redline-init"]["command"][-1]
    assert "redline migrate" in init
    assert "redline topics" in init
    for name, deployment in deployments().items():
        (migrate,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert migrate["command"] == ["redline", "migrate"], name


def test_every_service_gets_what_make_run_gives_it() -> None:
    for process in server_processes(load_catalogue()):
        env = compose_services()[process.name]["environment"]
        for name in ("KAFKA_BOOTSTRAP", "DATABASE_URL", "REDLINE_HOME", "REDLINE_TRUST_STORE"):
            assert name in env, (process.name, name)
        if process.subject_key:
            assert "REDLINE_SUBJECT_KEY" in env
        settings = load_settings(env)
        assert settings.require() == (env["KAFKA_BOOTSTRAP"], env["DATABASE_URL"])


# -- Files parse, images are pinned -------------------------------------------------------


def test_every_yaml_and_json_file_parses() -> None:
    paths = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml", ".json"})
    assert len(paths) > 50
    for path in paths:
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        else:
            assert load_all(path), path


def _pinned(image: str) -> bool:
    repository, _, tag = image.partition(":")
    return repository in ALLOWED_IMAGES and bool(PINNED_TAG.match(tag))


def test_compose_images_are_pinned_official_ones_or_built_here() -> None:
    built = 0
    for name, service in compose_services().items():
        if "build" in service:
            build = service["build"]
            assert build["dockerfile"] == DOCKERFILE, name
            assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == (
                REPO_ROOT / DOCKERFILE
            )
            assert "/" not in service["image"], f"{name}: a local tag, not a registry's"
            built += 1
        else:
            assert _pinned(service["image"]), f"{name}: {service['image']} is not allowed"
    assert built > 20
    images = {s["image"] for s in repo_services().values()}
    assert len(images) == 1, "one image for every Redline process"


def test_the_dockerfile_starts_from_a_pinned_official_image() -> None:
    lines = (REPO_ROOT / DOCKERFILE).read_text(encoding="utf-8").splitlines()
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases
    assert all(_pinned(base) for base in bases), bases


# -- Processes, departments, ports -------------------------------------------------------


def test_every_process_module_exists() -> None:
    for process in server_processes(load_catalogue()):
        assert process.command[:2] == ("python", "-m")
        module = REPO_ROOT / (process.command[2].replace(".", "/") + ".py")
        assert module.exists(), module


def test_compose_postgres_runs_with_the_embedded_servers_settings() -> None:
    """Autovacuum every 10 s there too: plans cached before a table's first ANALYZE read it
    whole (BENCHMARKS.md)."""
    command = compose_services()["postgres"]["command"]
    assert command[0] == "postgres"
    assert command[1::2] == ["-c"] * len(SERVER_SETTINGS)
    assert tuple(command[2::2]) == SERVER_SETTINGS
    assert "autovacuum_naptime=10s" in SERVER_SETTINGS


def test_every_department_has_a_compose_service_and_a_deployment() -> None:
    services = compose_services()
    found = deployments()
    for code in load_catalogue().codes:
        command = ["python", "-m", "services.entrypoints.department", code]
        assert services[f"department-{code}"]["command"] == command
        name = f"redline-department-{code}".replace("_", "-")
        deployment = found[name]
        assert (K8S / "departments" / f"{code}.yaml").exists()
        assert container(deployment)["command"] == command
        env = env_of(container(deployment))
        assert env["REDLINE_SIGNING_KEY_ID"]["secretKeyRef"]["name"] == signing_secret(code)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["redline.io/service"] == f"department-{code}"


def test_a_party_gets_no_enforcer_deployment_dashboard_or_kafka_user() -> None:
    """Parties (public security, discipline, court...) own no measures: nothing of theirs
    consumes the violations stream, so nothing of theirs is deployed from the catalogue."""
    catalogue = load_catalogue()
    parties = [party.code for party in catalogue.parties]
    assert {"public_security", "discipline", "urban_management", "court"} <= set(parties)
    services = compose_services()
    found = deployments()
    uids = {board["uid"] for board in dashboards().values()}
    departments = {process.department for process in server_processes(catalogue)}
    issuers = {user.issuer for user in kafka_users(catalogue)}
    for code in parties:
        assert code not in departments
        assert f"department-{code}" not in services
        assert f"redline-department-{code}".replace("_", "-") not in found
        assert not (K8S / "departments" / f"{code}.yaml").exists()
        assert department_uid(code) not in uids
        assert code not in issuers


def test_core_services_are_deployed_and_the_api_has_a_service() -> None:
    found = deployments()
    for name in ("relay", "feedback", "blocklist", "monitor", "registry-api"):
        assert f"redline-{name}" in found
        assert name in compose_services()
    services = [doc for _, doc in k8s_documents() if doc["kind"] == "Service"]
    assert [s["metadata"]["name"] for s in services] == ["redline-registry-api"]


def test_kustomization_lists_the_files_it_applies() -> None:
    kustomization = load(K8S / "kustomization.yaml")
    resources = kustomization["resources"]
    assert all((K8S / resource).exists() for resource in resources)
    assert {f"departments/{code}.yaml" for code in load_catalogue().codes} <= set(resources)


def _targets() -> dict[str, tuple[str, int]]:
    """Compose's scrape targets: service label -> (host, port)."""
    groups = json.loads(COMPOSE_TARGETS.read_text(encoding="utf-8"))
    found = {}
    for group in groups:
        assert set(group) == {"targets", "labels"}
        assert set(group["labels"]) == {"service"}
        (target,) = group["targets"]
        host, port = target.rsplit(":", 1)
        found[group["labels"]["service"]] = (host, int(port))
    return found


def test_compose_ports_match_what_the_services_listen_on() -> None:
    api_port = load_settings({}).api_port
    assert api_port == 8000
    targets = _targets()
    long_running = {
        name
        for name, s in repo_services().items()
        if name != "redline-init" and "profiles" not in s
    }
    assert set(targets) == long_running
    for name in long_running:
        env = compose_services()[name]["environment"]
        host, port = targets[name]
        assert host == name
        if "REDLINE_METRICS_PORT" in env:
            assert port == int(env["REDLINE_METRICS_PORT"])
            assert env["REDLINE_METRICS_HOST"] == "0.0.0.0"
            assert compose_services()[name]["expose"] == [str(port)]
        elif "REDLINE_API_PORT" in env:  # the registry API serves /metrics on its own port
            assert port == int(env["REDLINE_API_PORT"]) == api_port
            assert env["REDLINE_API_HOST"] == "0.0.0.0"
            assert compose_services()[name]["ports"] == [f"127.0.0.1:{api_port}:{api_port}"]
        else:  # a subscriber: its check API port
            assert port == int(env["REDLINE_CONNECTOR_PORT"])
            assert compose_services()[name]["ports"][0].endswith(f":{port}")


def test_kubernetes_ports_match_what_the_services_listen_on() -> None:
    api_port = load_settings({}).api_port
    for name, deployment in deployments().items():
        box = container(deployment)
        env = env_of(box)
        (port,) = box["ports"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port["containerPort"])
        if "REDLINE_API_PORT" in env:
            assert port == {"name": "http", "containerPort": api_port, "protocol": "TCP"}
            assert int(env["REDLINE_API_PORT"]) == api_port
        else:
            assert port["name"] == "metrics", name
            assert port["containerPort"] == int(env["REDLINE_METRICS_PORT"])
            assert env["REDLINE_METRICS_HOST"] == "0.0.0.0"
    (service,) = [doc for _, doc in k8s_documents() if doc["kind"] == "Service"]
    assert service["spec"]["ports"][0]["port"] == api_port
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_signers_get_their_key_and_nothing_else_does() -> None:
    for process in server_processes(load_catalogue()):
        env = env_of(container(deployments()[process.dns_name]))
        assert ("REDLINE_SIGNING_KEY" in env) == (process.signs_as is not None), process.name
        assert ("REDLINE_SUBJECT_KEY" in env) == process.subject_key, process.name


def test_the_api_reads_its_token_hashes_from_a_read_only_secret(tmp_path: Path) -> None:
    for process in server_processes(load_catalogue()):
        deployment = deployments()[process.dns_name]
        env = env_of(container(deployment))
        if process.component != "api":
            assert "REDLINE_API_TOKENS" not in env, process.name
            continue
        path = Path(env["REDLINE_API_TOKENS"])
        (mount,) = [
            m for m in container(deployment)["volumeMounts"] if m["mountPath"] == str(path.parent)
        ]
        assert mount["readOnly"] is True
        (volume,) = [
            v
            for v in deployment["spec"]["template"]["spec"]["volumes"]
            if v["name"] == mount["name"]
        ]
        secret = volume["secret"]
        assert secret["items"] == [{"key": path.name, "path": path.name}]
        assert secret["defaultMode"] & 0o007 == 0  # not world-readable
        (example,) = [
            doc
            for _, doc in k8s_documents()
            if doc["kind"] == "Secret" and doc["metadata"]["name"] == secret["secretName"]
        ]
        # The example is a token file the API can load, hashes aside.
        (tmp_path / path.name).write_text(example["stringData"][path.name])
        assert TokenStore.load(tmp_path / path.name).principal("a token") is None
        break
    else:
        raise AssertionError("no registry API Deployment")


# -- Topics -------------------------------------------------------------------------------


def test_every_topic_is_a_kafka_topic_with_its_settings() -> None:
    documents = load_all(K8S / "topics" / "kafkatopics.yaml")
    by_name = {doc["spec"]["topicName"]: doc for doc in documents}
    assert set(by_name) == {topic.name for topic in ALL_TOPICS}
    replication = int(config_map()["REDLINE_KAFKA_REPLICATION"])
    for topic in ALL_TOPICS:
        resource = by_name[topic.name]
        assert resource["kind"] == "KafkaTopic"
        assert re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", resource["metadata"]["name"])
        assert resource["metadata"]["labels"]["strimzi.io/cluster"]
        assert resource["spec"]["partitions"] == topic.partitions
        assert resource["spec"]["replicas"] == replication
        assert resource["spec"]["config"] == topic.config


# -- Metrics in dashboards and alerts -------------------------------------------------------

_SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


@cache
def exported_metrics() -> dict[str, set[str] | None]:
    """Sample names services/metrics.py exports, with their labels (None: not known)."""
    found: dict[str, set[str] | None] = {}
    for value in vars(services.metrics).values():
        if isinstance(value, MetricWrapperBase):
            labels: set[str] | None = set(value._labelnames)
            families = value.describe()
        elif (
            isinstance(value, type)
            and value.__module__ == services.metrics.__name__
            and Collector in value.__mro__
        ):
            try:
                labels, families = None, list(value().collect())
            except TypeError:  # needs arguments: the check on `declared` below says so
                continue
        else:
            continue
        for family in families:
            for suffix in _SAMPLE_SUFFIXES[family.type]:
                found[family.name + suffix] = labels
    source = (REPO_ROOT / "services" / "metrics.py").read_text(encoding="utf-8")
    declared = set(re.findall(r"\"(redline_[a-z0-9_]+)\"", source))
    missing = {name for name in declared if not any(s.startswith(name) for s in found)}
    assert not missing, f"metrics.py declares {missing} in a way this test cannot see"
    return found


def allowed_metrics() -> dict[str, set[str] | None]:
    return {**exported_metrics(), **SUBSCRIBER_METRICS, **PROMETHEUS_METRICS}


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(=~|!~|!=|=)")
_IDENTIFIER = re.compile(r"(?<![\w.$:])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """Each metric a PromQL expression selects, with the labels it matches on."""
    text = _STRING.sub('""', expr)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    found = []
    for match in _SELECTOR.finditer(text):
        labels = {label for label, _ in _MATCHER.findall(match.group(2))}
        found.append((match.group(1) or "", labels))
    bare = _SELECTOR.sub(lambda m: m.group(1) or "", text)
    named = {name for name, _ in found}
    for name in _IDENTIFIER.findall(bare):
        if name not in _KEYWORDS and name not in named:
            found.append((name, set()))
    return found


def test_the_promql_reader_finds_metrics_and_labels() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (consumer, le) (rate(redline_handler_duration_seconds"
        '_bucket{consumer="a"}[$__rate_interval]))) > 1e3 and on (x) up{job="redline"} == 0 '
        'or label_replace(vector(1), "a", "$1", "b", "(.*)")'
    )
    assert selectors(expr) == [
        ("redline_handler_duration_seconds_bucket", {"consumer"}),
        ("up", {"job"}),
    ]


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load(ALERTS)["groups"] for rule in group["rules"]]


def all_queries() -> list[tuple[str, str]]:
    """(where, expr) of every dashboard panel, dashboard variable and alert."""
    queries = []
    for path in sorted((GRAFANA / "dashboards").rglob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        queries += [(path.name, expr) for expr in panel_queries(board)]
        for variable in board["templating"]["list"]:
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["definition"])
            assert inner, variable
            queries.append((f"{path.name} ${variable['name']}", inner.group(1)))
    queries += [(rule["alert"], rule["expr"]) for rule in alert_rules()]
    return queries


def test_dashboards_and_alerts_query_only_metrics_that_exist() -> None:
    allowed = allowed_metrics()
    used = set()
    for where, expr in all_queries():
        found = selectors(expr)
        assert found, f"{where}: no metric in {expr}"
        for name, labels in found:
            assert name in allowed, f"{where}: {name} is not exported ({expr})"
            known = allowed[name]
            if known is not None:
                unknown = labels - known - TARGET_LABELS
                assert not unknown, f"{where}: {name} has no label {unknown} ({expr})"
            used.add(name)
    # The operators' view covers the whole loop.
    for name in (
        "redline_cases_filed_total",
        "redline_measures_applied_total",
        "redline_measures_lifted_total",
        "redline_responses_pending",
        "redline_responses_overdue",
        "redline_consumer_lag_messages",
        "redline_dead_letters_total",
        "redline_outbox_backlog_events",
        "redline_outbox_oldest_unsent_age_seconds",
        "redline_active_blocks",
        "redline_accountability_referrals_total",
        "redline_subscriber_staleness_seconds",
        "redline_check_requests_total",
        "redline_check_duration_seconds_bucket",
    ):
        assert name in used, name


# -- Dashboards -----------------------------------------------------------------------------


def dashboards() -> dict[Path, dict[str, Any]]:
    return {
        path: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((GRAFANA / "dashboards").rglob("*.json"))
    }


def test_dashboards_use_the_provisioned_datasource() -> None:
    (source,) = load(GRAFANA / "provisioning" / "datasources" / "prometheus.yaml")["datasources"]
    assert source["uid"] == DATASOURCE_UID == DATASOURCE["uid"]
    assert source["type"] == DATASOURCE["type"]
    for path, board in dashboards().items():
        for item in board["panels"]:
            if item["type"] in ("row", "text"):
                continue
            assert item["datasource"] == DATASOURCE, (path.name, item["title"])
            assert item["targets"], (path.name, item["title"])
            for target in item["targets"]:
                assert target["datasource"] == DATASOURCE


def test_one_dashboard_per_department_and_unique_uids() -> None:
    boards = dashboards()
    uids = [board["uid"] for board in boards.values()]
    assert len(uids) == len(set(uids))
    assert all(len(uid) <= 40 for uid in uids)
    for code in load_catalogue().codes:
        assert department_uid(code) in uids
    assert {"redline-overview", "redline-subscribers"} <= set(uids)
    assert len(boards) == len(load_catalogue().codes) + 2


def test_panels_do_not_overlap() -> None:
    for path, board in dashboards().items():
        cells: set[tuple[int, int]] = set()
        for item in board["panels"]:
            grid = item["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (path.name, item["title"])
            area = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & area, (path.name, item["title"])
            cells |= area


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    providers = load(GRAFANA / "provisioning" / "dashboards" / "redline.yaml")["providers"]
    mounts = compose_services()["grafana"]["volumes"]
    assert "../grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    paths = {p["options"]["path"] for p in providers}
    assert paths == {
        f"/var/lib/grafana/dashboards/{d.name}" for d in (GRAFANA / "dashboards").iterdir()
    }
    assert set(all_dashboards(load_catalogue())) == {
        str(p.relative_to(GRAFANA / "dashboards")) for p in dashboards()
    }


# -- Prometheus ---------------------------------------------------------------------------


def test_prometheus_reads_the_targets_file_next_to_it() -> None:
    config = load(PROMETHEUS)
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == JOB
    assert job["honor_labels"] is True
    assert job["file_sd_configs"] == [{"files": ["targets.json"], "refresh_interval": "30s"}]
    volumes = compose_services()["prometheus"]["volumes"]
    for mount in (
        "../prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        "../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
        "./prometheus/targets.json:/etc/prometheus/targets.json:ro",
    ):
        assert mount in volumes
    processes = [*server_processes(load_catalogue()), *subscriber_processes(load_catalogue())]
    assert set(_targets()) == {p.name for p in processes}


def test_every_alert_has_a_severity_and_names_what_it_is_about() -> None:
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        text = rule["annotations"]["summary"] + rule["annotations"]["description"]
        labels = {
            label.strip()
            for group in re.findall(r"\bby\s*\(([^)]*)\)", rule["expr"])
            for label in group.split(",")
        }
        if re.search(r"\bup\{", rule["expr"]) and "absent" not in rule["expr"]:
            labels.add("service")
        for label in labels:
            assert f"$labels.{label}" in text, f"{rule['alert']} does not name {label}"


def _alert(name: str) -> dict[str, Any]:
    (rule,) = [rule for rule in alert_rules() if rule["alert"] == name]
    return rule


def _threshold(expr: str) -> float:
    match = re.search(r">\s*([\d.]+)\s*$", expr.strip())
    assert match, expr
    return float(match.group(1))


def test_alerts_cover_the_loop_with_the_shared_thresholds() -> None:
    assert "redline_responses_overdue" in _alert("RedlineResponsesOverdue")["expr"]
    assert re.search(
        r"(deriv|delta)\(redline_consumer_lag_messages\[",
        _alert("RedlineConsumerLagGrowing")["expr"],
    )
    assert "increase(redline_dead_letters_total[" in _alert("RedlineDeadLetters")["expr"]
    stuck = _alert("RedlineOutboxStuck")["expr"]
    assert "redline_outbox_oldest_unsent_age_seconds" in stuck
    assert _threshold(stuck) == OUTBOX_AGE_ALERT_SECONDS
    stale = _alert("RedlineSubscriberReplicaStale")["expr"]
    assert "redline_subscriber_staleness_seconds" in stale
    assert _threshold(stale) == STALENESS_BOUND_SECONDS
    assert _alert("RedlineServiceDown")["expr"] == f'up{{job="{JOB}"}} == 0'


# -- Generated files ------------------------------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    assert generate.check() == []
    assert generate.main(["--check"]) == 0


def test_drift_missing_and_stale_files_are_detected(tmp_path: Path, capsys: Any) -> None:
    root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, root, ignore=shutil.ignore_patterns("__pycache__"))
    board = root / "grafana" / "dashboards" / "departments" / "redline-department-finance.json"
    board.write_text(board.read_text(encoding="utf-8").replace("finance", "finances"))
    (root / "k8s" / "departments" / "banks.yaml").unlink()
    (root / "k8s" / "departments" / "retired.yaml").write_text("kind: Deployment\n")
    assert generate.check(root) == [
        "drifted: grafana/dashboards/departments/redline-department-finance.json",
        "missing: k8s/departments/banks.yaml",
        "extra: k8s/departments/retired.yaml",
    ]
    assert generate.main(["--check", "--root", str(root)]) == 1
    assert "make dashboards" in capsys.readouterr().err
    generate.write(root)
    assert generate.check(root) == []


@pytest.mark.parametrize("path", ["compose/compose.yaml", "k8s/core.yaml"])
def test_generated_yaml_says_so(path: str) -> None:
    assert (
        (DEPLOY / path).read_text(encoding="utf-8").startswith("# Generated by `make dashboards`")
    )
