"""The step routes are made from STEP_EVENTS in one loop (services/entrypoints/case_routes.py);
each must still document its own request model, the Idempotency-Key header and its refusals,
as the hand-written routes did."""

from __future__ import annotations

from typing import Any

import pytest

from services.access import TokenStore
from services.config import load_settings
from services.entrypoints.api import create_app
from services.entrypoints.case_routes import STEP_OPERATIONS, step_path
from services.registry.domain import Step
from services.registry.handlers import STEP_EVENTS


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(load_settings({}), tokens=TokenStore({}))
    return app.openapi()


@pytest.mark.parametrize("step", list(STEP_EVENTS))
def test_each_step_route_takes_its_own_model_and_the_idempotency_key(
    document: dict[str, Any], step: Step
) -> None:
    operation = document["paths"][step_path(step)]["post"]
    details_model = STEP_EVENTS[step][0]
    body = operation["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{details_model.__name__}"}
    (header,) = [p for p in operation["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and header["required"] is False
    assert {"200", "401", "403", "404", "409", "413", "422", "503"} <= set(operation["responses"])
    name = STEP_OPERATIONS[step][0]
    assert operation["operationId"].startswith(f"{name}_v1_cases__case_id__")


def test_the_step_paths_are_the_published_ones(document: dict[str, Any]) -> None:
    steps = {path.rsplit("/", 1)[1] for path in map(step_path, STEP_EVENTS)}
    assert steps == {
        "penalty",
        "rectification",
        "revocation",
        "closure",
        "correction",
        "land-procedures",
        "confiscation",
    }
    assert all(step_path(step) in document["paths"] for step in STEP_EVENTS)
    assert set(STEP_OPERATIONS) == set(STEP_EVENTS)
