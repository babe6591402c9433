"""The generated Kafka ACLs (deploy/k8s/users/kafkausers.yaml) give each identity write on
exactly the topics its outbox rows go to, derived from data the code runs on: what each
authority may issue (events/authorities.py) and which topic carries each event type
(events/topics.py). The embedded Tansu enforces no ACLs, so the table is checked here
and the integration test checks the real outbox rows against it. Pure: reads files only."""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import cache
from typing import Any

import yaml

from deploy.acls import kafka_users
from events.authorities import all_authorities
from events.catalogue import load_catalogue
from events.topics import ACKNOWLEDGEMENTS, ALL_TOPICS, BLOCKLISTS, DEAD_LETTERS, VIOLATIONS
from services.config import REPO_ROOT

USERS_FILE = REPO_ROOT / "deploy" / "k8s" / "users" / "kafkausers.yaml"
TOPICS = tuple(topic.name for topic in ALL_TOPICS)


@cache
def generated() -> dict[str, list[dict[str, Any]]]:
    """Each KafkaUser of the generated file: its name -> its ACLs, as Strimzi reads them."""
    users = {}
    for document in yaml.safe_load_all(USERS_FILE.read_text(encoding="utf-8")):
        assert document["kind"] == "KafkaUser"
        users[document["metadata"]["name"]] = document["spec"]["authorization"]["acls"]
    return users


def allowed(user: str, resource: str, name: str, operation: str) -> bool:
    """Whether the generated ACLs allow it (Kafka's literal and prefixed patterns)."""
    for acl in generated()[user]:
        target = acl["resource"]
        if target["type"] != resource or operation not in acl["operations"]:
            continue
        if target["patternType"] == "prefix" and name.startswith(target["name"]):
            return True
        if target["patternType"] == "literal" and name == target["name"]:
            return True
    return False


def writes(user: str) -> set[str]:
    return {topic for topic in TOPICS if allowed(user, "topic", topic, "Write")}


def issued_to(authority_code: str) -> set[str]:
    """The topics the events `authority_code` may issue are carried on: where its outbox's
    rows go."""
    authority = {a.code: a for a in all_authorities()}[authority_code]
    return {
        topic.name
        for topic in ALL_TOPICS
        if any(
            fnmatchcase(event_type, pattern)
            for event_type in topic.event_types
            for pattern in authority.may_issue
        )
    }


def test_each_identity_writes_exactly_the_topics_its_outbox_rows_go_to() -> None:
    users = kafka_users(load_catalogue())
    assert {user.name for user in users} == set(generated())
    for user in users:
        expected = issued_to(user.issuer) if user.issuer else set()
        assert writes(user.name) == expected, user.name


def test_the_tracker_writes_answers_and_dead_letters_and_the_relay_the_violations_alone() -> None:
    assert writes("redline-feedback") == {ACKNOWLEDGEMENTS.name, DEAD_LETTERS.name}
    assert writes("redline-relay") == {VIOLATIONS.name}
    writers = {user: writes(user) for user in generated()}
    assert [u for u, topics in writers.items() if VIOLATIONS.name in topics] == ["redline-relay"]
    for blocklist in BLOCKLISTS:
        assert [u for u, topics in writers.items() if blocklist.name in topics] == [
            "redline-blocklist"
        ]


def test_each_reader_reads_what_it_consumes_in_its_own_group() -> None:
    assert allowed("redline-feedback", "topic", ACKNOWLEDGEMENTS.name, "Read")
    assert allowed("redline-feedback", "group", "redline-feedback", "Read")
    assert not allowed("redline-feedback", "group", "redline-blocklist", "Read")
    assert allowed("dept-water-supply", "group", "redline-department-water_supply", "Read")
    assert not allowed("dept-water-supply", "group", "redline-department-banks", "Read")


def test_a_subscriber_reads_its_own_measures_lists_only() -> None:
    catalogue = load_catalogue()
    for department in catalogue.subscriber_departments:
        user = f"{department.code}-demo-subscriber".replace("_", "-")
        own = {f"redline.blocklist.{m.code}.v1" for m in department.measures}
        readable = {t for t in TOPICS if allowed(user, "topic", t, "Read")}
        assert readable == own, user
