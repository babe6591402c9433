"""Kubernetes workloads: a Deployment per Redline process (its migrate init container,
its Secrets mounted read-only), the registry API's Service, the namespace and ConfigMap."""

from __future__ import annotations

from deploy.manifests.common import (
    API_TOKENS_FILE,
    API_TOKENS_SECRET,
    K8S_IMAGE,
    K8S_KAFKA,
    K8S_SIGNING_DIR,
    K8S_SUBJECT_DIR,
    K8S_TOKENS_DIR,
    K8S_TRUST_DIR,
    RELAY_BATCH,
    SIGNING_KEY_FILE,
    SIGNING_KEY_ID,
    SUBJECT_KEY_FILE,
    TIMEZONE,
    TRUST_STORE_FILE,
    Json,
    part_of,
)
from deploy.model import (
    ALL_INTERFACES,
    API_PORT,
    HOME,
    K8S_KAFKA_REPLICAS,
    K8S_NAMESPACE,
    Process,
)


def _labels(process: Process) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "redline",
        "app.kubernetes.io/part-of": "redline",
        "app.kubernetes.io/component": process.component,
        "redline.io/service": process.name,
    }


def _selector(process: Process) -> dict[str, str]:
    return {"app.kubernetes.io/name": "redline", "redline.io/service": process.name}


def signing_secret(authority: str) -> str:
    return f"redline-signing-{authority}".replace("_", "-")


def _k8s_env(process: Process) -> list[Json]:
    env: list[Json] = [
        {
            "name": "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "redline-database", "key": "DATABASE_URL"}},
        }
    ]
    if process.signs_as:
        env += [
            {"name": "REDLINE_SIGNING_KEY", "value": f"{K8S_SIGNING_DIR}/{SIGNING_KEY_FILE}"},
            {
                "name": "REDLINE_SIGNING_KEY_ID",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": signing_secret(process.signs_as),
                        "key": SIGNING_KEY_ID,
                    }
                },
            },
        ]
    if process.subject_key:
        env.append(
            {"name": "REDLINE_SUBJECT_KEY", "value": f"{K8S_SUBJECT_DIR}/{SUBJECT_KEY_FILE}"}
        )
    if process.component == "relay":
        env.append({"name": "REDLINE_RELAY_BATCH", "value": RELAY_BATCH})
    if process.component == "api":
        env += [
            {"name": "REDLINE_API_PORT", "value": str(API_PORT)},
            {"name": "REDLINE_API_HOST", "value": ALL_INTERFACES},
            {"name": "REDLINE_API_TOKENS", "value": f"{K8S_TOKENS_DIR}/{API_TOKENS_FILE}"},
        ]
    else:
        env += [
            {"name": "REDLINE_METRICS_PORT", "value": str(process.port)},
            {"name": "REDLINE_METRICS_HOST", "value": ALL_INTERFACES},
        ]
    return env


def _secret_volume(
    name: str, secret: str, directory: str, files: tuple[str, ...] = ()
) -> tuple[Json, Json]:
    """A Secret as a volume only the service's group reads, mounted read-only."""
    source: Json = {"secretName": secret, "defaultMode": 0o440}
    if files:
        source["items"] = [{"key": file, "path": file} for file in files]
    return {"name": name, "secret": source}, {
        "name": name,
        "mountPath": directory,
        "readOnly": True,
    }


def _k8s_volumes(process: Process) -> tuple[list[Json], list[Json]]:
    volumes: list[Json] = [
        {"name": "home", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "trust-store", "configMap": {"name": "redline-trust-store"}},
    ]
    mounts: list[Json] = [
        {"name": "home", "mountPath": HOME},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, the pod's own
        {"name": "trust-store", "mountPath": K8S_TRUST_DIR, "readOnly": True},
    ]
    secrets = []
    if process.subject_key:
        secrets.append(_secret_volume("subject-key", "redline-subject-key", K8S_SUBJECT_DIR))
    if process.signs_as:
        secret = signing_secret(process.signs_as)
        secrets.append(_secret_volume("signing-key", secret, K8S_SIGNING_DIR, (SIGNING_KEY_FILE,)))
    if process.component == "api":  # the hashes of its bearer tokens, never the tokens
        secrets.append(
            _secret_volume("api-tokens", API_TOKENS_SECRET, K8S_TOKENS_DIR, (API_TOKENS_FILE,))
        )
    for volume, mount in secrets:
        volumes.append(volume)
        mounts.append(mount)
    return volumes, mounts


def _container(process: Process, mounts: list[Json]) -> Json:
    port_name = "http" if process.component == "api" else "metrics"
    return {
        "name": process.component,
        "image": K8S_IMAGE,
        "command": list(process.command),
        "envFrom": [{"configMapRef": {"name": "redline-env"}}],
        "env": _k8s_env(process),
        "ports": [{"name": port_name, "containerPort": process.port, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": port_name}, "periodSeconds": 10},
        "livenessProbe": {
            "tcpSocket": {"port": port_name},
            "initialDelaySeconds": 30,
            "periodSeconds": 20,
            "failureThreshold": 6,
        },
        "resources": {
            "requests": {"cpu": "50m", "memory": "192Mi"},
            "limits": {"memory": "768Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }


def _migrate(container: Json) -> Json:
    # `redline migrate` is safe to run from several places at once: no process starts
    # before the registry's schema is current (make run and Compose migrate first too).
    return {
        "name": "migrate",
        "image": K8S_IMAGE,
        "command": ["redline", "migrate"],
        "envFrom": container["envFrom"],
        "env": container["env"][:1],  # DATABASE_URL
        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": container["securityContext"],
        "volumeMounts": [m for m in container["volumeMounts"] if m["name"] in ("home", "tmp")],
    }


def deployment(process: Process) -> Json:
    volumes, mounts = _k8s_volumes(process)
    container = _container(process, mounts)
    migrate = _migrate(container)
    # One monitor and one blocklist builder per deployment, never two at once: two
    # monitors count every gauge twice, and two builders would vouch for each other.
    single = process.component in ("monitor", "blocklist")
    strategy = {"type": "Recreate"} if single else {"type": "RollingUpdate"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": process.dns_name, "labels": _labels(process)},
        "spec": {
            "replicas": 1,
            "strategy": strategy,
            "selector": {"matchLabels": _selector(process)},
            "template": {
                "metadata": {
                    "labels": _labels(process),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(process.port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": 30,
                    "initContainers": [migrate],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def api_service(process: Process) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": process.dns_name, "labels": _labels(process)},
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(process),
            "ports": [{"name": "http", "port": API_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def namespace() -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": K8S_NAMESPACE, "labels": part_of()},
    }


def config_map() -> Json:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "redline-env", "labels": part_of()},
        "data": {
            "KAFKA_BOOTSTRAP": K8S_KAFKA,
            "REDLINE_HOME": HOME,
            "REDLINE_KAFKA_REPLICATION": str(K8S_KAFKA_REPLICAS),
            "REDLINE_TIMEZONE": TIMEZONE,
            "REDLINE_TRUST_STORE": f"{K8S_TRUST_DIR}/{TRUST_STORE_FILE}",
        },
    }
