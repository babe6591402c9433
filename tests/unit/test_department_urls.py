"""A hosted department connects as its own role and never falls back to another's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.config import load_settings
from services.entrypoints.department_host import department_urls
from services.errors import ConfigError

OWN = "postgresql://redline_dept_banks@db/redline"


def test_each_department_gets_its_own_url(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP": "broker:9092",
            "DATABASE_URL": OWN,
            "REDLINE_HOME": str(tmp_path),
            "REDLINE_DEPARTMENT_DATABASE_URLS": json.dumps({"banks": OWN}),
        }
    )
    assert department_urls(settings, ["banks"]) == {"banks": OWN}


def test_a_department_missing_from_the_map_is_refused_not_given_another_role(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        {
            "KAFKA_BOOTSTRAP": "broker:9092",
            "DATABASE_URL": OWN,
            "REDLINE_HOME": str(tmp_path),
            "REDLINE_DEPARTMENT_DATABASE_URLS": json.dumps({"banks": OWN}),
        }
    )
    with pytest.raises(ConfigError, match="no database URL for department finance"):
        department_urls(settings, ["banks", "finance"])


def test_an_unusable_map_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REDLINE_DEPARTMENT_DATABASE_URLS: not JSON"):
        load_settings(
            {
                "KAFKA_BOOTSTRAP": "broker:9092",
                "DATABASE_URL": OWN,
                "REDLINE_HOME": str(tmp_path),
                "REDLINE_DEPARTMENT_DATABASE_URLS": "{not json",
            }
        )
