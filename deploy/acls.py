"""Kafka users and their ACLs, least privilege: one user per process identity, each
allowed to write only the topics its own outbox (or, for a subscriber, its own producer)
writes, and to read only what it consumes. The generator writes them as Strimzi KafkaUser
resources (deploy/k8s/users/kafkausers.yaml); deploy/README.md shows the same table as
kafka-acls.sh commands for a plain Apache Kafka.

A user name is also the Kubernetes object name Strimzi takes it from, so it is a DNS label
(a department code's `_` becomes `-`): the process logs in with it
(REDLINE_KAFKA_USERNAME).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deploy.model import Process, server_processes, subscriber_processes
from events.authorities import NATURAL_RESOURCES
from events.catalogue import Catalogue
from events.topics import ACKNOWLEDGEMENTS, DEAD_LETTERS, VIOLATIONS, blocklist_topic

PREFIX = "redline."
"""Every Redline topic's name begins so: Describe on it lets `ensure_topics` list them."""
GROUP_PREFIX = "redline-"
BLOCKLIST_PREFIX = "redline.blocklist."
# The signed heads of the audit chains (services/adapters/audit_anchor.py): written by the
# audit anchor's identity alone, so nobody else can anchor a shortened history (#18).
AUDIT_CHECKPOINTS = "redline.audit.checkpoints.v1"

READ, WRITE, DESCRIBE, CREATE, ALTER = "Read", "Write", "Describe", "Create", "Alter"
DESCRIBE_CONFIGS = "DescribeConfigs"  # the start-up check of topic settings


@dataclass(frozen=True)
class Acl:
    """Allow `operations` on one resource: a topic, a consumer group or the cluster."""

    resource: str  # topic | group | cluster
    name: str
    operations: tuple[str, ...]
    prefix: bool = False  # the name is a prefix (Kafka's `prefixed` pattern type)

    def covers(self, resource: str, name: str, operation: str) -> bool:
        if self.resource != resource or operation not in self.operations:
            return False
        return name.startswith(self.name) if self.prefix else name == self.name


@dataclass(frozen=True)
class KafkaUser:
    name: str
    process: str | None
    """The process (deploy/model.py) that logs in as this user; None: operators."""
    issuer: str | None
    """The authority whose events this user publishes (its outbox's, or its producer's):
    what it may write follows from what that authority may issue."""
    acls: tuple[Acl, ...]

    def may(self, resource: str, name: str, operation: str) -> bool:
        return any(acl.covers(resource, name, operation) for acl in self.acls)

    def writes(self, topics: tuple[str, ...]) -> set[str]:
        """Which of `topics` this user may write."""
        return {topic for topic in topics if self.may("topic", topic, WRITE)}


def _topic(name: str, *operations: str, prefix: bool = False) -> Acl:
    return Acl("topic", name, operations, prefix)


def _group(name: str) -> Acl:
    return Acl("group", name, (READ,))


_DESCRIBE_ALL = _topic(PREFIX, DESCRIBE, prefix=True)  # ensure_topics lists the topics
_ANSWERS = _topic(ACKNOWLEDGEMENTS.name, WRITE)
_DEAD_LETTERS = _topic(DEAD_LETTERS.name, WRITE)


def username(name: str) -> str:
    """A DNS-1123 label: Strimzi names the user after its KafkaUser object."""
    return re.sub(r"[^a-z0-9-]", "-", name.lower())


def _user(process: Process) -> KafkaUser:
    name, issuer = process.name, process.signs_as
    match process.component:
        case "relay":  # the registry's outbox: the legal record, and nothing else
            acls: tuple[Acl, ...] = (_topic(VIOLATIONS.name, WRITE), _DESCRIBE_ALL)
            issuer = NATURAL_RESOURCES.code
        case "feedback":
            acls = (
                _topic(VIOLATIONS.name, READ),
                _topic(ACKNOWLEDGEMENTS.name, READ),
                _group("redline-feedback"),
                _ANSWERS,
                _DEAD_LETTERS,
                _DESCRIBE_ALL,
            )
        case "blocklist":
            acls = (
                _topic(VIOLATIONS.name, READ),
                _group("redline-blocklist"),
                _topic(BLOCKLIST_PREFIX, WRITE, prefix=True),
                _DEAD_LETTERS,
                _DESCRIBE_ALL,
            )
        case "department":
            acls = (
                _topic(VIOLATIONS.name, READ),
                _group(f"redline-department-{process.department}"),
                _ANSWERS,
                _DEAD_LETTERS,
                _DESCRIBE_ALL,
            )
        case "subscriber":  # its own measures' lists only; manual assignment, no group
            acls = (
                *(_topic(blocklist_topic(m).name, READ) for m in process.measures),
                _ANSWERS,
                _DEAD_LETTERS,
            )
        case "monitor":  # committed offsets of the groups: describe only
            acls = (_DESCRIBE_ALL, Acl("group", GROUP_PREFIX, (DESCRIBE,), prefix=True))
        case "api":  # it signs what the relay publishes; its health probe only describes
            acls = (_DESCRIBE_ALL,)
            issuer = None
        case other:
            raise ValueError(f"no Kafka ACLs for process component {other!r}")
    if process.component == "department":
        name = f"dept-{process.department}"
    elif process.component == "subscriber" and process.signs_as:
        name = process.signs_as  # the authority name it signs as
    else:
        name = f"redline-{process.name}"
    return KafkaUser(username(name), process.name, issuer, acls)


def kafka_users(catalogue: Catalogue) -> list[KafkaUser]:
    """Every process's user (departments by catalogue code, a demo subscriber per utility
    and bank), and the operators' user that creates the topics."""
    processes = [*server_processes(catalogue), *subscriber_processes(catalogue)]
    admin = KafkaUser(
        "redline-admin",
        None,
        None,
        (_topic(PREFIX, CREATE, DESCRIBE, DESCRIBE_CONFIGS, ALTER, prefix=True),),
    )
    anchor = KafkaUser(
        "redline-audit-anchor",
        "audit-anchor",
        None,  # it signs no events: its checkpoints are signed with the registry's key
        (_topic(AUDIT_CHECKPOINTS, WRITE, READ), _DESCRIBE_ALL),
    )
    return [*(_user(p) for p in processes), anchor, admin]
