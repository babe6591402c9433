"""Every knob is in `Settings`, read once by `load_settings`, and in the README's one table.

Fails on a `REDLINE_*` name in services/ or events/ code that the table does not list, on
a table row no code reads (stale configuration), and on an environment read outside
services/config.py, such as one at import time."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services import metrics
from services.config import REPO_ROOT, Settings, load_settings
from services.errors import ConfigError

NAME = re.compile(r"\bREDLINE_[A-Z0-9_]*[A-Z0-9]\b")
CODE_DIRECTORIES = ("services", "events")


def code_files() -> list[Path]:
    return sorted(
        path for directory in CODE_DIRECTORIES for path in (REPO_ROOT / directory).rglob("*.py")
    )


def names_in_code() -> dict[str, list[str]]:
    """Each REDLINE_* name in services/ and events/ code, with where it appears."""
    found: dict[str, list[str]] = {}
    for path in code_files():
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, []).append(str(path.relative_to(REPO_ROOT)))
    return found


def names_in_table(readme: str) -> set[str]:
    """The variables in the first column of the README's "Settings" table."""
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {match for row in rows for match in NAME.findall(row.split("|")[1])}


def readme() -> str:
    return (REPO_ROOT / "README.md").read_text(encoding="utf-8")


class Recording(Mapping[str, str]):
    """An environment that notes every variable looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._stored = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._stored[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return self._stored.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self._stored

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("load_settings must ask for its variables by name")

    def __len__(self) -> int:
        return len(self._stored)


def test_every_redline_name_in_code_is_in_the_settings_table() -> None:
    table = names_in_table(readme())
    missing = {name: where for name, where in names_in_code().items() if name not in table}
    assert not missing, f"REDLINE_* variables missing from README ## Settings: {missing}"


def test_every_variable_in_the_settings_table_is_read_by_some_code() -> None:
    stale = names_in_table(readme()) - set(names_in_code())
    assert not stale, f"README ## Settings lists variables no code reads: {sorted(stale)}"


def test_load_settings_reads_exactly_the_tables_variables() -> None:
    """One place reads them all: the table is what load_settings looks up, no more or less."""
    environment = Recording({})
    load_settings(environment)
    asked = {name for name in environment.asked if name.startswith("REDLINE_")}
    assert asked == names_in_table(readme())
    assert {"KAFKA_BOOTSTRAP", "DATABASE_URL"} <= environment.asked


def test_the_table_check_fails_on_a_variable_it_does_not_list() -> None:
    """The guard itself: a row taken out of the table is noticed."""
    shortened = readme().replace("| `REDLINE_LOG_LEVEL` |", "| `LOG_LEVEL_GONE` |")
    assert "REDLINE_LOG_LEVEL" in names_in_code()
    assert "REDLINE_LOG_LEVEL" not in names_in_table(shortened)


ENVIRONMENT_READ = re.compile(r"\bos\.environ\b|\bgetenv\(")
# The supervisor hands its own environment on to its children; it reads no knob from it.
PASSES_ENVIRONMENT_ON = {"services/entrypoints/run.py": 1}


def test_nothing_but_the_settings_reads_the_environment() -> None:
    readers = {}
    for path in code_files():
        where = str(path.relative_to(REPO_ROOT))
        count = len(ENVIRONMENT_READ.findall(path.read_text(encoding="utf-8")))
        if count and where != "services/config.py":
            readers[where] = count
    assert readers == PASSES_ENVIRONMENT_ON


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REDLINE_METRICS", "maybe"),
        ("REDLINE_METRICS_PORT", "nine"),
        ("REDLINE_METRICS_PORT", "70000"),
        ("REDLINE_METRICS_HOST", "local host"),
        ("REDLINE_API_HOST", "0.0.0.0 "),
        ("REDLINE_PROMETHEUS", "perhaps"),
        ("REDLINE_LOG_LEVEL", "loud"),
        ("REDLINE_KAFKA_REPLICATION", "0"),
        ("REDLINE_FETCH_WAIT_IDLE_MS", "50"),  # below the busy wait (100)
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name} must be"):
        load_settings({name: value})


def test_the_new_knobs_are_read_into_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "REDLINE_API_HOST": "0.0.0.0",
            "REDLINE_METRICS": "off",
            "REDLINE_METRICS_PORT": "9100",
            "REDLINE_METRICS_HOST": "10.0.0.1",
            "REDLINE_PROMETHEUS": "off",
            "REDLINE_LOG_LEVEL": "info",
            "REDLINE_CITY_CONFIG": str(tmp_path / "city.yaml"),
        }
    )
    assert (settings.api_host, settings.metrics, settings.metrics_port) == ("0.0.0.0", False, 9100)
    assert (settings.metrics_host, settings.prometheus, settings.log_level) == (
        "10.0.0.1",
        False,
        "INFO",
    )
    assert settings.city_config == tmp_path / "city.yaml"
    defaults = load_settings({})
    assert (defaults.api_host, defaults.metrics, defaults.metrics_port) == ("127.0.0.1", True, None)
    assert (defaults.prometheus, defaults.log_level, defaults.city_config) == (
        True,
        "WARNING",
        None,
    )


def test_whether_metrics_count_is_decided_at_start_up_not_import(tmp_path: Path) -> None:
    def published() -> float | None:
        labels = {"outbox": "settings-test", "topic": "t"}
        return REGISTRY.get_sample_value("redline_events_published_total", labels)

    quiet = Settings(kafka_bootstrap=None, database_url=None, home=tmp_path, metrics=False)
    try:
        assert metrics.start_metrics_server(quiet) is None  # no port: nothing served
        metrics.count_published("settings-test", ["t"])
        assert published() is None  # not even created: counting is off
        metrics.start_metrics_server(load_settings({"REDLINE_HOME": str(tmp_path)}))
        metrics.count_published("settings-test", ["t"])
        assert published() == 1
    finally:
        metrics.start_metrics_server(load_settings({}))
