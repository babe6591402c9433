"""Parties (bodies the seed gives a duty that is not a block) hold tokens and run nothing
that consumes the violations stream; departments each run an enforcer (issue #17)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from events.catalogue import load_catalogue
from services.access import Role, TokenStore, dev_token
from services.config import Settings
from services.entrypoints.run import child_services
from services.runtime.devkeys import ensure_dev_keys

CATALOGUE = load_catalogue()
PARTIES = [party.code for party in CATALOGUE.parties]


def test_make_run_starts_an_enforcer_for_each_department_and_none_for_a_party(
    tmp_path: Path,
) -> None:
    settings = Settings(kafka_bootstrap=None, database_url=None, home=tmp_path, demo=False)
    standalone = {
        child.args[0]
        for child in child_services(replace(settings, departments_hosted=False))
        if child.module == "services.entrypoints.department"
    }
    [host] = [
        child
        for child in child_services(settings)
        if child.module == "services.entrypoints.department_host"
    ]
    for enforcers in (standalone, set(host.departments)):
        assert enforcers == set(CATALOGUE.codes)
        assert {"transport", "water_resources"} <= enforcers
        assert not set(PARTIES) & enforcers
    assert PARTIES, "the catalogue names parties"


def test_every_body_gets_a_development_token_of_its_own_role_department(tmp_path: Path) -> None:
    ensure_dev_keys(tmp_path)  # what make run does on the embedded servers
    store = TokenStore.load(tmp_path / "tokens.yaml")
    for code in [*CATALOGUE.codes, *PARTIES]:
        principal = store.principal(dev_token(tmp_path, f"department-{code}"))
        assert principal is not None, code
        assert (principal.role, principal.department) == (Role.department, code)
