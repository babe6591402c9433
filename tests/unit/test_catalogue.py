"""The measures catalogue: valid, faithful to the seed, with a runnable enforcer per department."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import faust
import pytest
import yaml

from events import catalogue_schemagen as schemagen
from events import measures_table
from events.catalogue import (
    CATALOGUE_FILE,
    SCHEMA_FILE,
    Catalogue,
    Stage,
    load_catalogue,
    parse_catalogue,
)
from events.errors import CatalogueError, UnknownDepartment
from events.land import LandClass
from events.topics import BLOCKLIST_MEASURES, VIOLATIONS
from services.config import Settings, load_settings
from services.entrypoints.department import DepartmentRuntime, build_app

# The legal source (孝政办发〔2023〕19号), kept in the repo beside the catalogue that cites it.
SEED = Path(__file__).resolve().parents[2] / "events" / "seed.txt"

REQUIRED_DEPARTMENTS = {
    "approvals",
    "development_reform",
    "finance",
    "housing",
    "transport",
    "water_resources",
    "forestry",
    "agriculture",
    "emergency",
    "education",
    "culture_tourism",
    "health",
    "fire",
    "energy",
    "market_regulation",
    "water_supply",
    "power_supply",
    "gas_supply",
    "banks",
}
# Bodies the seed gives a duty that is no block: they receive referrals or read assessments.
REQUIRED_PARTIES = {
    "urban_management",
    "public_security",
    "discipline",
    "procuratorate",
    "court",
    "ecology_environment",
    "audit",
    "city_government",
    "organization",
}

CODES = load_catalogue().codes


def _without_whitespace(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _settings(home: Path) -> Settings:
    return load_settings(
        {
            "KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "DATABASE_URL": "postgresql://x@127.0.0.1:2/x",
            "REDLINE_HOME": str(home),
        }
    )


# --- the file validates ----------------------------------------------------------------


def test_yaml_validates_against_the_models() -> None:
    catalogue = load_catalogue()
    assert isinstance(catalogue, Catalogue)
    # Parsing the text afresh (no cache) gives the same catalogue.
    text = CATALOGUE_FILE.read_text(encoding="utf-8")
    assert parse_catalogue(text, str(CATALOGUE_FILE)) == catalogue


def test_yaml_validates_against_the_committed_schema() -> None:
    # jsonschema is not installed in the venv: the committed schema is proven to be the
    # models' schema (below), and the models validate the YAML (above). The YAML, as
    # plain data, is also revalidated in JSON mode so only JSON-representable values pass.
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == Catalogue.model_json_schema()
    document = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    Catalogue.model_validate_json(json.dumps(document, ensure_ascii=False))
    assert set(document) <= set(committed["properties"])
    assert set(committed["required"]) <= set(document)


def test_committed_schema_has_no_drift() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schemagen.render()
    assert schemagen.main(["--check"]) == 0


def test_schemagen_check_fails_on_drift_and_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "catalogue.schema.json"
    stale.write_text("{}\n", encoding="utf-8")
    monkeypatch.setattr(schemagen, "SCHEMA_FILE", stale)
    assert schemagen.main(["--check"]) == 1
    assert "python -m events.catalogue_schemagen" in capsys.readouterr().err
    assert schemagen.main([]) == 0
    assert stale.read_text(encoding="utf-8") == schemagen.render()
    assert schemagen.main(["--check"]) == 0


def test_render_is_sorted_indented_json_ending_in_a_newline() -> None:
    text = schemagen.render()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- the content ----------------------------------------------------------------------


def test_every_required_department_is_present() -> None:
    assert set(CODES) >= REQUIRED_DEPARTMENTS, REQUIRED_DEPARTMENTS - set(CODES)


def test_every_legal_basis_is_verbatim_in_the_seed() -> None:
    assert SEED.is_file(), f"seed document not found at {SEED}"
    seed = _without_whitespace(SEED.read_text(encoding="utf-8"))
    missing = [
        f"{department.code}.{measure.code}"
        for department in load_catalogue().departments
        for measure in department.measures
        if _without_whitespace(measure.legal_basis) not in seed
    ]
    catalogue = load_catalogue()
    bases = [(p.code, p.legal_basis) for p in catalogue.parties]
    bases += [(k.code, k.legal_basis) for k in catalogue.referrals]
    missing += [code for code, basis in bases if _without_whitespace(basis) not in seed]
    assert missing == []


def test_credit_record_starts_at_penalty() -> None:
    measure = load_catalogue().department("development_reform").measure("publish_credit_record")
    assert measure.starts_at is Stage.penalty


def test_the_parties_hold_no_measure_and_receive_the_referrals() -> None:
    catalogue = load_catalogue()
    assert {party.code for party in catalogue.parties} == REQUIRED_PARTIES
    assert not REQUIRED_PARTIES & set(catalogue.codes)
    receivers = {kind.to for kind in catalogue.referrals}
    assert {"public_security", "discipline", "court", "procuratorate"} <= receivers


def test_the_threshold_refers_rather_than_blocks() -> None:
    """Seed §四(五): 5 mu / 10 mu starts the accountability procedure, which is a referral to
    discipline inspection (and public security, and a report to the city), not a block."""
    catalogue = load_catalogue()
    assert not [m for m in catalogue.measures().values() if m.starts_at is Stage.accountability]
    automatic = {k.code for k in catalogue.referrals if k.starts_at is Stage.accountability}
    assert automatic == {"criminal", "discipline", "major_case_report"}


def test_a_referral_to_an_unknown_body_is_refused() -> None:
    document = _catalogue_document()
    document["referrals"][0]["to"] = "nobody"
    message = _refused(document)
    assert "unknown bodies nobody" in message


def test_unknown_department_is_a_config_error_listing_the_known() -> None:
    with pytest.raises(UnknownDepartment, match=r"unknown department 'nobody'.*power_supply"):
        load_catalogue().department("nobody")


# --- every department has a runnable enforcer ----------------------------------------


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Any attempt to open a socket connection is recorded and refused."""
    attempts: list[object] = []

    def refuse(_sock: socket.socket, address: object) -> Any:
        attempts.append(address)
        raise AssertionError(f"building the app connected to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.mark.parametrize("code", CODES)
def test_department_builds_a_faust_app_without_connecting(
    code: str, tmp_path: Path, no_connections: list[object]
) -> None:
    app = build_app(DepartmentRuntime(code, _settings(tmp_path)))
    assert isinstance(app, faust.App)
    assert app.conf.id == f"redline-department-{code}"
    assert [str(url) for url in app.conf.broker] == ["kafka://127.0.0.1:1"]
    agents = list(app.agents.values())
    assert len(agents) == 1
    assert agents[0].channel.topics == (VIOLATIONS.name,)
    assert (tmp_path / "faust" / code).is_dir()
    assert no_connections == []


def test_consumer_group_ids_are_unique_per_department(
    tmp_path: Path, no_connections: list[object]
) -> None:
    settings = _settings(tmp_path)
    group_ids = [build_app(DepartmentRuntime(code, settings)).conf.id for code in CODES]
    assert len(set(group_ids)) == len(CODES)
    assert no_connections == []


# --- bad catalogue text is refused, naming the field ---------------------------------


def _catalogue_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    return document


def _refused(document: dict[str, Any]) -> str:
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(text, "bad.yaml")
    message = str(caught.value)
    assert message.startswith("bad.yaml: ")
    return message


def test_the_round_tripped_document_is_accepted() -> None:
    text = yaml.safe_dump(_catalogue_document(), allow_unicode=True, sort_keys=False)
    assert parse_catalogue(text) == load_catalogue()


def test_unknown_stage_is_refused() -> None:
    document = _catalogue_document()
    document["departments"][0]["measures"][0]["starts_at"] = "sentencing"
    message = _refused(document)
    assert "departments.0.measures.0.starts_at" in message
    assert "filing" in message


def test_duplicate_department_code_is_refused() -> None:
    document = _catalogue_document()
    document["departments"][1]["code"] = document["departments"][0]["code"]
    message = _refused(document)
    assert "department and party codes repeat" in message
    assert document["departments"][0]["code"] in message


def test_duplicate_measure_code_is_refused() -> None:
    document = _catalogue_document()
    measures = document["departments"][1]["measures"]
    measures[1]["code"] = measures[0]["code"]
    assert "development_reform: measure codes repeat" in _refused(document)


def test_missing_legal_basis_is_refused() -> None:
    document = _catalogue_document()
    del document["departments"][2]["measures"][0]["legal_basis"]
    message = _refused(document)
    assert "departments.2.measures.0.legal_basis" in message
    assert "Field required" in message


def test_negative_deadline_is_refused() -> None:
    document = _catalogue_document()
    document["departments"][0]["measures"][0]["response_deadline_hours"] = -1
    message = _refused(document)
    assert "departments.0.measures.0.response_deadline_hours" in message
    assert "greater than 0" in message


def test_unknown_field_is_refused() -> None:
    document = _catalogue_document()
    document["departments"][0]["measures"][0]["penalty_yuan"] = 100
    assert "departments.0.measures.0.penalty_yuan" in _refused(document)


def test_text_that_is_not_yaml_is_refused() -> None:
    with pytest.raises(CatalogueError, match=r"bad\.yaml: not YAML"):
        parse_catalogue("departments: [unclosed", "bad.yaml")


def test_a_project_measure_must_require_a_project() -> None:
    document = _catalogue_document()
    measure = document["departments"][0]["measures"][0]
    assert measure["targets"] == "project"
    measure["when"] = {"land": ["cultivated"]}
    assert "must require construction_project" in _refused(document)


def test_a_shared_measure_code_has_one_rule() -> None:
    document = _catalogue_document()
    emergency = next(d for d in document["departments"] if d["code"] == "emergency")
    # The anchors make every department's licence one object: give emergency its own.
    emergency["measures"] = [dict(m) for m in emergency["measures"]]
    licence = next(m for m in emergency["measures"] if m["code"] == "refuse_licence")
    licence["when"] = {"land": ["cultivated"]}
    assert "one code, one rule" in _refused(document)


def test_an_unknown_fact_is_refused() -> None:
    document = _catalogue_document()
    document["departments"][0]["measures"][0]["when"]["all_of"] = ["moon_landing"]
    assert "departments.0.measures.0.when.all_of.0" in _refused(document)


def test_every_measure_is_about_cultivated_land() -> None:
    """Seed §三 concerns 耕地 (basic farmland included): no measure starts on a case about
    construction or unused land alone."""
    for measure in load_catalogue().measures().values():
        assert measure.when.land <= {LandClass.permanent_basic_farmland, LandClass.cultivated}


def test_blocklists_are_the_utility_and_bank_measures() -> None:
    assert set(BLOCKLIST_MEASURES) == {
        m.code for d in load_catalogue().departments if d.kind != "government" for m in d.measures
    }


def test_the_readme_table_of_measures_is_the_catalogue() -> None:
    assert measures_table.main(["--check"]) == 0
    assert (
        "| `refuse_power_supply` 不得供电 | 供电企业 | filing |"
        in measures_table.README.read_text(encoding="utf-8")
    )
