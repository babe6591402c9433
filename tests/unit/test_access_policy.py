"""The access table: each role reaches what it needs and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.access import Principal, Role, TokenStore, decide, dev_token, ensure_dev_tokens
from services.errors import ConfigError

OFFICER = Principal("o", Role.case_officer)
OPERATOR = Principal("op", Role.operator)
SUBSCRIBER = Principal("s", Role.subscriber)
POWER = Principal("d", Role.department, "power_supply")
INSPECTOR = Principal("a", Role.agriculture_inspector)
SIGN_OFFS = "/v1/cases/RL-2026-000001/restoration/sign-offs"


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        (OFFICER, "POST", "/v1/cases"),
        (OFFICER, "POST", SIGN_OFFS),
        (OFFICER, "POST", "/v1/cases/RL-2026-000001/land-procedures"),
        (OFFICER, "POST", "/v1/cases/RL-2026-000001/confiscation"),
        (INSPECTOR, "POST", SIGN_OFFS),
        (INSPECTOR, "GET", "/v1/cases/RL-2026-000001"),
        (OFFICER, "GET", "/v1/cases/RL-2026-000001"),
        (OPERATOR, "GET", "/v1/cases"),
        (POWER, "GET", "/v1/departments/power_supply/blocks"),
        (OPERATOR, "GET", "/v1/departments/banks/blocks"),
        (SUBSCRIBER, "GET", "/v1/checks"),
        (POWER, "GET", "/v1/checks"),
        (OPERATOR, "GET", "/v1/reports/township"),
        (None, "GET", "/healthz"),
        (None, "GET", "/metrics"),
    ],
)
def test_allowed(who: Principal | None, method: str, path: str) -> None:
    assert decide(who, method, path) is None


@pytest.mark.parametrize(
    ("who", "method", "path", "reason"),
    [
        (None, "POST", "/v1/cases", "a bearer token is required"),
        (SUBSCRIBER, "POST", "/v1/cases", "is for case_officer, not subscriber"),
        (POWER, "POST", "/v1/cases/RL-1/revocation", "is for case_officer, not department"),
        (OPERATOR, "POST", "/v1/cases", "is for case_officer, not operator"),
        (POWER, "GET", "/v1/departments/banks/blocks", "may read only its own blocks"),
        (SUBSCRIBER, "GET", "/v1/departments/banks/blocks", "not subscriber"),
        (SUBSCRIBER, "GET", "/v1/cases/RL-1", "not subscriber"),
        (OFFICER, "DELETE", "/v1/cases/RL-1", "is not allowed"),
        (POWER, "POST", SIGN_OFFS, "not department"),
        (OPERATOR, "POST", SIGN_OFFS, "not operator"),
        (INSPECTOR, "POST", "/v1/cases", "not agriculture_inspector"),
        (INSPECTOR, "POST", "/v1/cases/RL-1/closure", "not agriculture_inspector"),
        (POWER, "POST", "/v1/cases/RL-1/land-procedures", "not department"),
        (SUBSCRIBER, "POST", "/v1/cases/RL-1/confiscation", "not subscriber"),
    ],
)
def test_refused_with_the_reason(
    who: Principal | None, method: str, path: str, reason: str
) -> None:
    refusal = decide(who, method, path)
    assert refusal is not None and reason in refusal


def test_dev_tokens_are_stored_only_as_hashes(tmp_path: Path) -> None:
    path = ensure_dev_tokens(tmp_path, ["power_supply"])
    token = dev_token(tmp_path, "department-power_supply")
    assert token not in path.read_text()
    store = TokenStore.load(path)
    assert store.principal(token) == Principal(
        "department-power_supply", Role.department, "power_supply"
    )
    assert store.principal(token + "x") is None
    inspector = dev_token(tmp_path, "agriculture-inspector")
    assert store.principal(inspector) == Principal(
        "agriculture-inspector", Role.agriculture_inspector
    )
    with pytest.raises(ConfigError, match="REDLINE_API_TOKENS"):
        TokenStore.load(tmp_path / "missing.yaml")
