"""The HTTP APIs fuzzed from their own OpenAPI documents (schemathesis): no 5xx, answers
as documented, and no request the document calls invalid is ever accepted.

Bounded and derandomised, so CI is quick and a failure reproduces: a fixed number of
examples per operation, generated the same way on every run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from connectors.subscriber.access import Access, TokenSet, token_hash
from connectors.subscriber.api import ConnectorApp
from connectors.subscriber.metrics import DaemonMetrics
from connectors.subscriber.subscriber import Subscriber
from connectors.subscriber.testing import Deployment, ManualClock, record
from events.catalogue import load_catalogue
from events.signing import TrustStore
from services.access import TokenStore, dev_token
from services.adapters.db_roles import migrate_all
from services.config import Settings
from services.entrypoints.api import create_app
from tests.conftest import Stack, create_database
from tests.support import new_uscc

# Longer than the suite's 30 s per test: schemathesis sends every operation its generated requests.
pytestmark = pytest.mark.timeout(300)

EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
async def fuzzed_settings(stack: Stack, settings: Settings, trust: TrustStore) -> Settings:
    """A database of its own: what the fuzzer files stays out of the other tests' way,
    with blocklist tables a builder has just vouched for, so that a check the fuzzer
    happens to send with a valid ID is answered, not refused as stale (a 503)."""
    database = await create_database(stack, migrated=False)
    # Every schema, as `make run` prepares them: a department's blocks are read from its own.
    await migrate_all(database, load_catalogue().codes)
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("INSERT INTO blocklist.vouched (as_of) VALUES (now())")
    finally:
        await conn.close()
    fuzzed = settings.with_endpoints(stack.kafka, database)
    return dataclasses.replace(fuzzed, check_freshness_bound=24 * 3600.0)


@pytest.fixture(scope="module")
def registry_schema(fuzzed_settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    # Nothing injected: the app builds its registry in its own lifespan, on the event loop
    # schemathesis serves it from.
    app = create_app(fuzzed_settings, tokens=TokenStore.load(fuzzed_settings.api_tokens))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()


def _examples(strategy: SearchStrategy[schemathesis.Case[Any]], headers: dict[str, str]) -> None:
    """Send each generated request and run the checks on its answer."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def _fuzz(schema: schemathesis.BaseSchema, headers_for: Callable[[str], dict[str, str]]) -> None:
    """Every operation, valid and invalid requests; all failures reported at once."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            try:
                _examples(strategy, headers_for(operation.method.upper()))
            except Unsatisfiable:
                # No request breaks this operation's document (e.g. one free-text path
                # parameter and nothing else): there is nothing invalid to send.
                if mode is GenerationMode.POSITIVE:
                    raise
            except (AssertionError, FailureGroup) as found:  # all reported below
                failures.append(f"{operation.label} ({mode.value}): {found}")
    assert not failures, "\n\n".join(failures)


def test_the_registry_api_keeps_its_document(
    registry_schema: schemathesis.BaseSchema, fuzzed_settings: Settings
) -> None:
    """A case officer writes, an operator reads: each has every right its calls need."""

    def headers_for(method: str) -> dict[str, str]:
        who = "case-officer" if method == "POST" else "operator"
        return {"Authorization": f"Bearer {dev_token(fuzzed_settings.home, who)}"}

    _fuzz(registry_schema, headers_for)


POWER = "refuse_power_supply"
SUBSCRIBER = "power_supply_fuzzed_subscriber"


def test_the_subscriber_check_api_keeps_its_document(tmp_path: Path) -> None:
    """On a fresh replica holding one block, so checks answer clear, blocked and refused."""
    deployment = Deployment.create(tmp_path, SUBSCRIBER)
    clock = ManualClock()
    subscriber = Subscriber(deployment.config(SUBSCRIBER, (POWER,)), clock=clock)
    subject = new_uscc()
    key, value, _ = deployment.factory.entry(POWER, subject, case_ids=("case-1",))
    moment = datetime.fromtimestamp(clock.now, UTC)
    subscriber.apply_records(
        [
            # In the partition the builder would use, which its signed list head counts.
            record(POWER, deployment.factory.partition(POWER, subject), 0, key, value),
            *(
                record(POWER, p, 1, *deployment.factory.heartbeat(POWER, p, moment))
                for p in range(3)
            ),
        ]
    )
    assert subscriber.health()["status"] == "fresh"
    # A token, and no rate limit: the fuzzer's requests reach the check, not a 429.
    access = Access(TokenSet([("fuzzer", token_hash("fuzz-token"))]), None)
    app = ConnectorApp(subscriber, DaemonMetrics(SUBSCRIBER, subscriber), access=access)
    authorised = {"Authorization": "Bearer fuzz-token"}
    _fuzz(schemathesis.openapi.from_asgi("/openapi.json", app), lambda method: authorised)
