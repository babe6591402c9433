"""The rest of the Kubernetes tree: Strimzi topics and users, the PodMonitor, example
Secrets, and the kustomization that lists every file."""

from __future__ import annotations

import re

from deploy.acls import KafkaUser, kafka_users
from deploy.manifests.common import (
    API_TOKENS_FILE,
    API_TOKENS_SECRET,
    K8S_IMAGE,
    SIGNING_KEY_FILE,
    SIGNING_KEY_ID,
    STRIMZI_CLUSTER,
    SUBJECT_KEY_FILE,
    TRUST_STORE_FILE,
    Json,
    part_of,
    version,
)
from deploy.manifests.workloads import (
    api_service,
    config_map,
    deployment,
    namespace,
    signing_secret,
)
from deploy.model import JOB, K8S_KAFKA_REPLICAS, K8S_NAMESPACE, server_processes
from events.catalogue import Catalogue
from events.topics import ALL_TOPICS, Topic


def _dns_label(name: str) -> str:
    return re.sub(r"[^a-z0-9.-]", "-", name.lower())


def _strimzi_metadata(name: str) -> Json:
    """Strimzi's operators act only on resources labelled with their cluster."""
    return {"name": name, "labels": part_of(**{"strimzi.io/cluster": STRIMZI_CLUSTER})}


def kafka_topic(topic: Topic) -> Json:
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": _strimzi_metadata(_dns_label(topic.name)),
        "spec": {
            "topicName": topic.name,
            "partitions": topic.partitions,
            "replicas": K8S_KAFKA_REPLICAS,
            "config": dict(topic.config),
        },
    }


def kafka_user(user: KafkaUser) -> Json:
    """A Strimzi KafkaUser: a SCRAM login and exactly the ACLs of deploy/acls.py."""
    acls = []
    for acl in user.acls:
        resource: Json = {"type": acl.resource}
        if acl.resource != "cluster":
            resource |= {"name": acl.name, "patternType": "prefix" if acl.prefix else "literal"}
        acls.append({"resource": resource, "operations": list(acl.operations)})
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": _strimzi_metadata(user.name),
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def pod_monitor() -> Json:
    """For the Prometheus Operator: the same job, labels and relabelling as prometheus.yml."""
    relabel_service = "__meta_kubernetes_pod_label_redline_io_service"
    relabelings = [
        {"sourceLabels": [relabel_service], "targetLabel": "service"},
        {"sourceLabels": [relabel_service], "targetLabel": "process"},
        {"targetLabel": "job", "replacement": JOB},
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {
            "name": "redline",
            "namespace": K8S_NAMESPACE,
            "labels": part_of(),
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": "redline"}},
            "podMetricsEndpoints": [
                {
                    "port": port,
                    "path": "/metrics",
                    "interval": "15s",
                    "honorLabels": True,
                    "relabelings": relabelings,
                }
                for port in ("metrics", "http")
            ],
        },
    }


def _secret(name: str, data: dict[str, str], comment: str) -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "annotations": {"redline.io/example": comment},
        },
        "type": "Opaque",
        "stringData": data,
    }


def example_secrets(catalogue: Catalogue) -> list[Json]:
    """What the Deployments expect to find; never applied as is (see deploy/README.md)."""
    secrets = [
        _secret(
            "redline-database",
            {"DATABASE_URL": "postgresql://redline:CHANGE-ME@postgres.example:5432/redline"},
            "the system of record",
        ),
        _secret(
            "redline-subject-key",
            {SUBJECT_KEY_FILE: "CHANGE-ME: the deployment's subject key file (hex)"},
            "HMAC key of subject IDs on blocklists (blocklist builder, registry API)",
        ),
        _secret(
            API_TOKENS_SECRET,
            {
                API_TOKENS_FILE: "tokens:  # CHANGE-ME: one entry per caller; the raw tokens "
                "go to the callers only\n"
                "- name: case-officer\n  role: case_officer\n  sha256: CHANGE-ME\n"
                "- name: department-finance\n  role: department\n  department: finance\n"
                "  sha256: CHANGE-ME\n"
            },
            "SHA-256 hashes of the bearer tokens, by caller and role (registry API)",
        ),
    ]
    signers = sorted({p.signs_as for p in server_processes(catalogue) if p.signs_as})
    for authority in signers:
        secrets.append(
            _secret(
                signing_secret(authority),
                {
                    SIGNING_KEY_FILE: f"CHANGE-ME: Ed25519 private key PEM of {authority}",
                    SIGNING_KEY_ID: f"{authority}-CHANGE-ME (as in the trust store)",
                },
                f"the signing key of authority {authority}",
            )
        )
    return secrets


def trust_store_example() -> Json:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "redline-trust-store",
            "annotations": {"redline.io/example": "who may issue which events (public keys)"},
        },
        "data": {TRUST_STORE_FILE: "# CHANGE-ME: the deployment's trust store (see README)\n"},
    }


def kubernetes(catalogue: Catalogue) -> dict[str, list[Json]]:
    """Every Kubernetes file, by path relative to deploy/k8s, with its documents."""
    processes = server_processes(catalogue)
    core = [p for p in processes if p.component != "department"]
    files: dict[str, list[Json]] = {
        "namespace.yaml": [namespace()],
        "config.yaml": [config_map()],
        "core.yaml": [
            *(deployment(p) for p in core),
            *(api_service(p) for p in core if p.component == "api"),
        ],
    }
    for process in processes:
        if process.component == "department":
            files[f"departments/{process.department}.yaml"] = [deployment(process)]
    files["kustomization.yaml"] = [
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": K8S_NAMESPACE,
            "resources": [name for name in files if name != "kustomization.yaml"],
            "images": [{"name": K8S_IMAGE, "newName": K8S_IMAGE, "newTag": version()}],
        }
    ]
    files["topics/kafkatopics.yaml"] = [kafka_topic(topic) for topic in ALL_TOPICS]
    files["users/kafkausers.yaml"] = [kafka_user(user) for user in kafka_users(catalogue)]
    files["monitoring/podmonitor.yaml"] = [pod_monitor()]
    files["examples/secrets.yaml"] = [*example_secrets(catalogue), trust_store_example()]
    return files
