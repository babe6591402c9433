"""Generate the JSON Schemas and the AsyncAPI document from the models and topics.

Run `python -m events.schemagen` after changing a model; `--check` (for CI) fails when the
committed files differ, so the documents other departments code against never go stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from events.envelope import KAFKA_CONTENT_TYPE, Envelope, schema_uri
from events.generated import Generator
from events.models import PAYLOAD_TYPES
from events.topics import ALL_TOPICS, Topic

EVENTS_DIR = Path(__file__).resolve().parent
SCHEMA_DIR = "schemas"
ENVELOPE_SCHEMA = "cloudevent.envelope.json"
ASYNCAPI_FILE = "asyncapi.yaml"
KAFKA_BINDING_VERSION = "0.5.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMMAND = "python -m events.schemagen"


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def payload_schema(event_type: str) -> dict[str, Any]:
    schema = PAYLOAD_TYPES[event_type].model_json_schema()
    schema["$id"] = schema_uri(event_type)
    schema["$schema"] = JSON_SCHEMA_DIALECT
    return schema


def envelope_schema() -> dict[str, Any]:
    schema = Envelope.model_json_schema()
    schema["$id"] = "urn:redline:schema:cloudevent.envelope"
    schema["$schema"] = JSON_SCHEMA_DIALECT
    return schema


def _topic_configuration(topic: Topic) -> dict[str, Any]:
    """AsyncAPI wants cleanup.policy as a list and the numeric settings as integers."""
    result: dict[str, Any] = {}
    for name, value in sorted(topic.config.items()):
        if name == "cleanup.policy":
            result[name] = value.split(",")
        elif value.lstrip("-").isdigit():
            result[name] = int(value)
        else:
            result[name] = value
    return result


def _message(event_type: str, topic: Topic) -> dict[str, Any]:
    model = PAYLOAD_TYPES[event_type]
    return {
        "name": event_type,
        "title": model.__name__,
        "summary": (model.__doc__ or model.__name__).strip().splitlines()[0],
        "contentType": KAFKA_CONTENT_TYPE,
        "description": (
            f"A signed CloudEvents 1.0 envelope ({SCHEMA_DIR}/{ENVELOPE_SCHEMA}) with type "
            f"`{event_type}`; the payload below is its `data`. Kafka key: {topic.key}."
        ),
        "payload": {"$ref": f"./{SCHEMA_DIR}/{event_type}.json"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": topic.key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def asyncapi_document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        channel_messages = {}
        for event_type in topic.event_types:
            messages[event_type] = _message(event_type, topic)
            channel_messages[event_type] = {"$ref": f"#/components/messages/{event_type}"}
        channels[topic.name] = {
            "address": topic.name,
            "description": f"{topic.description} Key: {topic.key}.",
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": topic.partitions,
                    "topicConfiguration": _topic_configuration(topic),
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        operations[f"receive.{topic.name}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "messages": [
                {"$ref": f"#/channels/{topic.name}/messages/{t}"} for t in topic.event_types
            ],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Redline events",
            "version": "1.0.0",
            "description": (
                "Interdepartmental joint punishment of illegal farmland occupation: "
                "signed CloudEvents (Ed25519) on Kafka. Every message is a structured "
                "CloudEvents JSON envelope; consumers verify the signature against their "
                "trust store before acting."
            ),
        },
        "defaultContentType": KAFKA_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render() -> dict[str, str]:
    """Every generated file, by path relative to the events package, with its content."""
    files = {
        f"{SCHEMA_DIR}/{event_type}.json": _json(payload_schema(event_type))
        for event_type in sorted(PAYLOAD_TYPES)
    }
    files[f"{SCHEMA_DIR}/{ENVELOPE_SCHEMA}"] = _json(envelope_schema())
    files[ASYNCAPI_FILE] = yaml.safe_dump(
        asyncapi_document(), sort_keys=False, allow_unicode=True, width=100
    )
    return files


# A schema no payload type has any more is stale.
GENERATOR = Generator(
    COMMAND, __doc__, EVENTS_DIR, render, fix=COMMAND, trees=((SCHEMA_DIR, "*.json"),)
)
check = GENERATOR.check
write = GENERATOR.write
main = GENERATOR.main


if __name__ == "__main__":
    sys.exit(main())
