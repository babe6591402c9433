"""Compose and Kubernetes manifests, derived from the processes, the catalogue and topics."""

from __future__ import annotations

from deploy.manifests.cluster import kubernetes
from deploy.manifests.common import DOCKERFILE, GENERATED
from deploy.manifests.compose import compose, compose_targets
from deploy.manifests.workloads import signing_secret

__all__ = ["DOCKERFILE", "GENERATED", "compose", "compose_targets", "kubernetes", "signing_secret"]
