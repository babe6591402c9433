"""Fixtures the subscriber connector's unit tests share: a deployment's key material in the
test's temporary directory, and a clock the test moves by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.subscriber.testing import Deployment, ManualClock
from tests.unit.builders import SUBSCRIBER


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    """Key material for the one subscriber `SUBSCRIBER`, provisioned in `tmp_path`."""
    return Deployment.create(tmp_path, SUBSCRIBER)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
