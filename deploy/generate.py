"""Write the deploy files derived from the catalogue, the topics and deploy/model.py:
the Grafana dashboards, the Compose file and its Prometheus targets, the Kubernetes
manifests and Strimzi topics. `make dashboards` runs it; `--check` reports drift.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from deploy.dashboards import all_dashboards
from deploy.manifests import GENERATED, compose, compose_targets, kubernetes
from events.catalogue import load_catalogue
from events.generated import Generator

COMMAND = "python -m deploy.generate"
DEPLOY_DIR = Path(__file__).resolve().parent
DASHBOARDS_DIR = "grafana/dashboards"
COMPOSE_FILE = "compose/compose.yaml"
COMPOSE_TARGETS = "compose/prometheus/targets.json"
K8S_DIR = "k8s"

GENERATED_TREES = ((DASHBOARDS_DIR, "*.json"), (K8S_DIR, "*.yaml"))
"""Directories whose every file of the pattern is generated (anything else is stale)."""


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks, never anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(*documents: Any) -> str:
    body = "---\n".join(
        yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        for doc in documents
    )
    header = "".join(f"# {line}\n" for line in textwrap.wrap(GENERATED, 96))
    return header + body


def to_json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Every generated file, by path relative to deploy/, with its content."""
    catalogue = load_catalogue()
    files = {
        f"{DASHBOARDS_DIR}/{name}": to_json(board)
        for name, board in all_dashboards(catalogue).items()
    }
    files[COMPOSE_FILE] = to_yaml(compose(catalogue))
    files[COMPOSE_TARGETS] = to_json(compose_targets(catalogue))
    for name, documents in kubernetes(catalogue).items():
        files[f"{K8S_DIR}/{name}"] = to_yaml(*documents)
    return files


GENERATOR = Generator(
    COMMAND, __doc__, DEPLOY_DIR, render, fix="make dashboards", trees=GENERATED_TREES
)
check = GENERATOR.check
write = GENERATOR.write
main = GENERATOR.main


if __name__ == "__main__":
    sys.exit(main())
