"""REDLINE_SUBSCRIBERS: which utility or bank department each production subscriber
answers for (the tracker binds its acknowledgements to it); anything else is refused."""

from __future__ import annotations

import pytest

from events.authorities import subscriber_authority
from events.catalogue import load_catalogue
from services.config import load_settings
from services.errors import ConfigError
from services.feedback.domain import Answerers


def _settings(value: str):  # type: ignore[no-untyped-def]
    return load_settings({"REDLINE_SUBSCRIBERS": value})


def test_pairs_name_each_subscriber_and_its_department() -> None:
    settings = _settings("city_water=water_supply, state_grid = power_supply")
    assert settings.subscribers == {"city_water": "water_supply", "state_grid": "power_supply"}
    answerers = Answerers.of(load_catalogue(), settings.subscribers)
    source = subscriber_authority("city_water").source
    assert answerers.refusal(source, "water_supply", "refuse_water_supply") is None
    assert answerers.refusal(source, "power_supply", "refuse_power_supply") is not None


def test_unset_or_empty_knows_only_the_demo_subscribers() -> None:
    assert load_settings({}).subscribers == {}
    assert _settings("  ").subscribers == {}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("city_water=nowhere", "not a utility or bank department"),
        ("city_water=finance", "not a utility or bank department"),
        ("city_water", "name=department pairs"),
        ("City Water=water_supply", "name=department pairs"),
        ("a=water_supply,,b=banks", "name=department pairs"),
        ("a=water_supply,a=banks", "named twice"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match="REDLINE_SUBSCRIBERS") as refused:
        _settings(value)
    assert reason in str(refused.value)
