"""The access table: each role reaches what it needs and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from events.catalogue import load_catalogue
from services.access import (
    CheckGrants,
    Principal,
    RateLimiter,
    Role,
    TokenStore,
    decide,
    dev_token,
    ensure_dev_tokens,
    retry_after,
    token_hash,
)
from services.config import load_settings
from services.errors import ConfigError

OFFICER = Principal("o", Role.case_officer)
OPERATOR = Principal("op", Role.operator)
SUBSCRIBER = Principal("s", Role.subscriber)
POWER = Principal("d", Role.department, "power_supply")
INSPECTOR = Principal("a", Role.agriculture_inspector)
SIGN_OFFS = "/v1/cases/RL-2026-000001/restoration/sign-offs"


# Referrals and clues (issue #17): the table lets the roles reach the paths; the handlers
# check the body behind the token (tests/unit/test_referrals_domain.py).
PATROL = Principal("p", Role.village_patrol, township="duizhen")
CHIEF = Principal("c", Role.field_chief, township="duizhen")
COURT = Principal("court", Role.department, "court")
TOWNSHIP = Principal("t", Role.township, township="duizhen")
REFERRAL = "/v1/referrals/R-2026-000001"

# Who calls what, and the refusal's reason (a part of it); None: allowed.
ACCESS: list[tuple[Principal | None, str, str, str | None]] = [
    (OFFICER, "POST", "/v1/cases", None),
    (OFFICER, "POST", SIGN_OFFS, None),
    (OFFICER, "POST", "/v1/cases/RL-2026-000001/land-procedures", None),
    (OFFICER, "POST", "/v1/cases/RL-2026-000001/confiscation", None),
    (INSPECTOR, "POST", SIGN_OFFS, None),
    (INSPECTOR, "GET", "/v1/cases/RL-2026-000001", None),
    (OFFICER, "GET", "/v1/cases/RL-2026-000001", None),
    (OPERATOR, "GET", "/v1/cases", None),
    (POWER, "GET", "/v1/departments/power_supply/blocks", None),
    (OPERATOR, "GET", "/v1/departments/banks/blocks", None),
    (SUBSCRIBER, "GET", "/v1/checks", None),
    (POWER, "GET", "/v1/checks", None),
    (OPERATOR, "GET", "/v1/reports/township", None),
    (None, "GET", "/healthz", None),
    (None, "GET", "/metrics", None),
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
    # referrals and clues
    (PATROL, "POST", "/v1/clues", None),
    (CHIEF, "POST", "/v1/clues", None),
    (POWER, "POST", "/v1/clues", None),
    (OFFICER, "POST", "/v1/clues", None),
    (OFFICER, "POST", "/v1/referrals", None),
    (COURT, "POST", "/v1/referrals", None),
    (COURT, "POST", f"{REFERRAL}/acceptance", None),
    (COURT, "POST", f"{REFERRAL}/refusal", None),
    (COURT, "POST", f"{REFERRAL}/outcome", None),
    (COURT, "GET", "/v1/referrals", None),
    (OPERATOR, "GET", REFERRAL, None),
    (OFFICER, "GET", REFERRAL, None),
    (SUBSCRIBER, "POST", "/v1/clues", "not subscriber"),
    (OPERATOR, "POST", "/v1/clues", "not operator"),
    (TOWNSHIP, "POST", "/v1/clues", "not township"),
    (PATROL, "POST", "/v1/cases", "not village_patrol"),
    (PATROL, "POST", "/v1/referrals", "not village_patrol"),
    (PATROL, "GET", "/v1/referrals", "not village_patrol"),
    (SUBSCRIBER, "GET", "/v1/referrals", "not subscriber"),
    (SUBSCRIBER, "GET", REFERRAL, "not subscriber"),
    (INSPECTOR, "GET", REFERRAL, "not agriculture_inspector"),
    (OFFICER, "POST", f"{REFERRAL}/acceptance", "is for department, not case_officer"),
    (OPERATOR, "POST", f"{REFERRAL}/outcome", "is for department, not operator"),
    (OPERATOR, "POST", "/v1/referrals", "not operator"),
]


@pytest.mark.parametrize(
    ("who", "method", "path", "refused"),
    ACCESS,
    ids=lambda value: value.role.value if isinstance(value, Principal) else None,
)
def test_the_access_table(
    who: Principal | None, method: str, path: str, refused: str | None
) -> None:
    refusal = decide(who, method, path)
    if refused is None:
        assert refusal is None
    else:
        assert refusal is not None and refused in refusal


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


# --- a check is bound to its measures, and rate limited per principal -----------------

GRANTS = CheckGrants(load_catalogue())
POWER_COMPANY = Principal("power-co", Role.subscriber, measures=frozenset({"refuse_power_supply"}))


@pytest.mark.parametrize(
    ("who", "measure"),
    [
        (POWER, "refuse_power_supply"),
        (Principal("b", Role.department, "banks"), "refuse_loans"),
        (Principal("e", Role.department, "energy"), "refuse_funding"),  # shared, and its own
        (POWER_COMPANY, "refuse_power_supply"),
        (OPERATOR, "publish_credit_record"),
        (OFFICER, "halt_transport_works"),
        (POWER, "refuse_sunshine"),  # unknown: the check refuses it as bad input (422)
    ],
)
def test_a_principal_checks_its_own_measures(who: Principal, measure: str) -> None:
    assert GRANTS.refusal(who, measure) is None


@pytest.mark.parametrize(
    ("who", "measure", "reason"),
    [
        (POWER, "publish_credit_record", "department power_supply may check only its own"),
        (POWER, "refuse_loans", "its own measures (refuse_power_supply)"),
        (POWER_COMPANY, "refuse_loans", "not granted it (granted: refuse_power_supply)"),
        (POWER_COMPANY, "halt_works", "subscriber power-co is not granted it"),
        (SUBSCRIBER, "refuse_power_supply", "(granted: none)"),  # none unless granted
        (INSPECTOR, "refuse_loans", "agriculture_inspector may check no measure"),
    ],
)
def test_a_check_of_another_measure_is_refused_naming_it(
    who: Principal, measure: str, reason: str
) -> None:
    refusal = GRANTS.refusal(who, measure)
    assert refusal is not None and refusal.startswith(f"measure {measure}: ")
    assert reason in refusal


def test_the_bucket_allows_the_burst_then_the_rate_per_principal() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5)  # one token comes every 1/rate seconds
    assert retry_after(0.5) == "1" and retry_after(1.2) == "2"
    assert limiter.take("b") is None  # another principal has its own bucket
    now[0] += 0.5
    assert limiter.take("a") is None and limiter.take("a") is not None
    now[0] += 60  # refills up to the burst, no further
    assert [limiter.take("a") is None for _ in range(4)] == [True, True, True, False]
    with pytest.raises(ValueError, match="rate > 0"):
        RateLimiter(rate=0, burst=1)


def _tokens(tmp_path: Path, *entries: Mapping[str, object]) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": list(entries)}))
    return path


def test_a_token_entry_grants_a_subscriber_its_measures_and_nothing_by_default(
    tmp_path: Path,
) -> None:
    granted = {"name": "power-co", "role": "subscriber", "sha256": token_hash("p")}
    bare = {"name": "bare", "role": "subscriber", "sha256": token_hash("b")}
    store = TokenStore.load(
        _tokens(tmp_path, {**granted, "measures": ["refuse_power_supply"]}, bare)
    )
    assert store.principal("p") == POWER_COMPANY
    bare_principal = store.principal("b")
    assert bare_principal is not None and bare_principal.measures == frozenset()


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (
            {"role": "subscriber", "measures": ["refuse_sunshine"]},
            "unknown measure(s) refuse_sunshine",
        ),
        ({"role": "subscriber", "measures": "refuse_loans"}, "measures: must be a list"),
        (
            {"role": "department", "department": "banks", "measures": ["refuse_loans"]},
            "only a subscriber is granted measures",
        ),
        ({"role": "department", "department": "aliens"}, "department: 'aliens' is not"),
        ({"role": "department"}, "department: None is not"),
    ],
)
def test_a_token_entry_that_grants_what_it_cannot_is_refused(
    tmp_path: Path, entry: dict[str, object], reason: str
) -> None:
    path = _tokens(tmp_path, {"name": "x", "sha256": token_hash("x"), **entry})
    with pytest.raises(ConfigError, match="REDLINE_API_TOKENS") as refused:
        TokenStore.load(path)
    assert "token x: " in str(refused.value) and reason in str(refused.value)


def test_the_dev_subscriber_is_granted_the_utilities_and_banks_measures(tmp_path: Path) -> None:
    store = TokenStore.load(ensure_dev_tokens(tmp_path, ["power_supply"]))
    subscriber = store.principal(dev_token(tmp_path, "subscriber"))
    assert subscriber is not None
    assert subscriber.measures == {
        "refuse_water_supply",
        "refuse_power_supply",
        "refuse_gas_supply",
        "refuse_loans",
    }
    assert GRANTS.refusal(subscriber, "publish_credit_record") is not None


def test_the_check_limits_are_settings() -> None:
    settings = load_settings(
        {
            "REDLINE_CHECK_RATE": "2.5",
            "REDLINE_CHECK_BURST": "7",
            "REDLINE_CHECK_FRESHNESS_BOUND": "10",
        }
    )
    assert (settings.check_rate, settings.check_burst) == (2.5, 7)
    assert settings.check_freshness_bound == 10.0
    defaults = load_settings({})
    assert (defaults.check_rate, defaults.check_burst) == (50.0, 100)
    assert defaults.check_freshness_bound == 30.0
    for name, value in (("REDLINE_CHECK_RATE", "0"), ("REDLINE_CHECK_FRESHNESS_BOUND", "inf")):
        with pytest.raises(ConfigError, match=f"{name} must be a positive number"):
            load_settings({name: value})
