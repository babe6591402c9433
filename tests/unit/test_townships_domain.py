"""Township accountability without a database: the townships file against the official
division codes, the talk and report state machines, the check against the bus, the
assessment, and who the access table lets in."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.access import Principal, Role, decide
from services.errors import ConfigError, InvalidInput
from services.townships import domain
from services.townships.directory import (
    TOWNSHIPS_FILE,
    load_township_aliases,
    load_townships,
    township_names,
)
from services.townships.domain import (
    TARGET_LABELS,
    BusFigures,
    Notice,
    NotYours,
    QuarterFigures,
    Rectification,
    RectificationReport,
    ReportStatus,
    StateError,
    Talk,
    TalkDecision,
    TalkRequest,
    TalkStatus,
    Veto,
)

# 乡级区划代码 under 孝义市 141181: National Bureau of Statistics, 统计用区划代码 2022 (cut-off
# 2022-10-31, published 2022-12-29), as held in modood/Administrative-divisions-of-China,
# dist/streets.csv at commit dc3a1d7.
OFFICIAL_2022 = {
    "141181001": "新义街道",
    "141181002": "中阳楼街道",
    "141181003": "振兴街道",
    "141181004": "胜溪湖街道",
    "141181005": "崇文街道",
    "141181100": "兑镇镇",
    "141181101": "阳泉曲镇",
    "141181102": "下堡镇",
    "141181103": "西辛庄镇",
    "141181104": "高阳镇",
    "141181105": "梧桐镇",
    "141181106": "柱濮镇",
    "141181107": "大孝堡镇",
    "141181201": "下栅乡",
    "141181202": "驿马乡",
    "141181204": "杜村乡",
}
# In the same source's 2020 list (commit 78b6f36), gone since.
ABOLISHED = {"141181200": "大孝堡乡", "141181203": "南阳乡"}

NOW = datetime(2025, 4, 10, 2, 0, tzinfo=UTC)
TODAY = date(2025, 4, 10)


# --- townships.yaml -----------------------------------------------------------------


def test_every_current_township_has_its_official_code_and_no_other() -> None:
    townships = load_townships()
    divisions = {t.division: t.name for t in townships.values() if t.division}
    assert divisions == OFFICIAL_2022
    assert all(t.division is None or t.division.startswith("141181") for t in townships.values())
    assert all(len(t.division or "") == 9 for t in townships.values() if t.kind == "township")


def test_the_development_zone_owns_cases_like_a_township() -> None:
    zones = [t for t in load_townships().values() if t.kind == "development_zone"]
    assert [(z.name, z.division) for z in zones] == [("孝义经济开发区", None)]


def test_abolished_units_are_only_aliases_mapped_to_their_successors() -> None:
    aliases = load_township_aliases()
    assert {a.division: a.name for a in aliases.values()} == ABOLISHED
    assert not set(aliases) & set(load_townships())  # never accepted for a new case
    assert aliases["daxiaobao_xiang"].successor == "daxiaobao"
    assert township_names()["nanyang"] == "南阳乡（已撤销）"  # old cases still read


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("townships:\n  - {code: a, name: 甲, division: '141182001'}\n", "division: '141182001'"),
        ("townships:\n  - {code: a, name: 甲, division: 141181001}\n", "division: 141181001"),
        ("townships:\n  - {code: a, name: 甲}\n", "township a: division: required"),
        (
            "townships:\n  - {code: a, name: 甲, division: '141181001'}\n"
            "  - {code: b, name: 乙, division: '141181001'}\n",
            "division: 141181001 used more than once",
        ),
        (
            "townships:\n  - {code: a, name: 甲, division: '141181001'}\n"
            "aliases:\n  - {code: old, name: 旧, division: '141181009', successor: gone}\n",
            "alias old: successor: 'gone' is not a current township",
        ),
    ],
)
def test_a_wrong_townships_file_is_refused_naming_the_entry(
    tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "townships.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_townships(path)
    assert named in str(refused.value)


def test_the_shipped_file_cites_its_source() -> None:
    text = TOWNSHIPS_FILE.read_text(encoding="utf-8")
    assert "modood/Administrative-divisions-of-China" in text and "dc3a1d7" in text


# --- warning talks ------------------------------------------------------------------


def _talk(**changes: Any) -> Talk:
    request = TalkRequest(township="xinyi", reason="整改不到位", cases=["RL-2025-000001"] * 2)
    talk = domain.new_talk("WT-2025-000001", request, by="case-officer", at=NOW, known=["xinyi"])
    for key, value in changes.items():
        talk = Talk(**{**talk.__dict__, key: value})
    return talk


APPROVE = TalkDecision(decision="approve", talk_on=date(2025, 4, 15), rectify_by=date(2025, 5, 31))


def test_a_talk_is_approved_with_a_deadline_then_rectified() -> None:
    talk = _talk()
    assert talk.cases == ("RL-2025-000001",)  # a case cited twice counts once
    approved = domain.decide_talk(
        talk, APPROVE, by="department-city_government", at=NOW, today=TODAY
    )
    assert (approved.status, approved.rectify_by) == (TalkStatus.approved, date(2025, 5, 31))
    assert domain.rectification(approved, date(2025, 5, 31)) is Rectification.open
    assert domain.rectification(approved, date(2025, 6, 1)) is Rectification.overdue
    report = RectificationReport(completed_on=date(2025, 5, 20), summary="已拆除复耕")
    done = domain.record_rectification(
        approved, report, township="xinyi", by="t", today=date(2025, 6, 2)
    )
    assert done.status is TalkStatus.rectified
    assert domain.rectification(done, date(2025, 12, 31)) is Rectification.met
    late = RectificationReport(completed_on=date(2025, 6, 2), summary="已整改")
    after = domain.record_rectification(
        approved, late, township="xinyi", by="t", today=date(2025, 6, 2)
    )
    assert domain.rectification(after, date(2025, 6, 2)) is Rectification.met_late


@pytest.mark.parametrize(
    ("decision", "field"),
    [
        (TalkDecision(decision="approve", rectify_by=date(2025, 5, 1)), "talk_on"),
        (TalkDecision(decision="approve", talk_on=date(2025, 4, 15)), "rectify_by"),
        (
            TalkDecision(
                decision="approve", talk_on=date(2025, 4, 15), rectify_by=date(2025, 4, 15)
            ),
            "rectify_by",
        ),
        (
            TalkDecision(decision="approve", talk_on=date(2025, 4, 1), rectify_by=date(2025, 5, 1)),
            "talk_on",
        ),
        (TalkDecision(decision="decline"), "reason"),
        (TalkDecision(decision="decline", reason="x", talk_on=date(2025, 4, 15)), "talk_on"),
    ],
)
def test_a_decision_without_what_it_needs_is_refused_naming_the_field(
    decision: TalkDecision, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        domain.decide_talk(_talk(), decision, by="city", at=NOW, today=TODAY)
    assert refused.value.field == field


def test_a_decided_talk_is_not_decided_again_nor_rectified_by_another_township() -> None:
    declined = domain.decide_talk(
        _talk(), TalkDecision(decision="decline", reason="已自行整改"), by="c", at=NOW, today=TODAY
    )
    with pytest.raises(StateError, match="declined"):
        domain.decide_talk(declined, APPROVE, by="c", at=NOW, today=TODAY)
    report = RectificationReport(completed_on=TODAY, summary="done")
    with pytest.raises(StateError, match="only an approved talk"):
        domain.record_rectification(declined, report, township="xinyi", by="t", today=TODAY)
    approved = domain.decide_talk(_talk(), APPROVE, by="c", at=NOW, today=TODAY)
    with pytest.raises(NotYours):
        domain.record_rectification(approved, report, township="duizhen", by="t", today=TODAY)


def test_a_talk_needs_a_known_township() -> None:
    with pytest.raises(InvalidInput) as refused:
        domain.new_talk(
            "WT-1", TalkRequest(township="nowhere", reason="r"), by="o", at=NOW, known=[]
        )
    assert refused.value.field == "township"


# --- the quarterly report -----------------------------------------------------------


def _figures(**targets: tuple[str, str]) -> QuarterFigures:
    items = {name: {"target": "100", "achieved": "100"} for name in TARGET_LABELS}
    for name, (target, achieved) in targets.items():
        items[name] = {"target": target, "achieved": achieved}
    return QuarterFigures.model_validate(
        {
            "targets": items,
            "findings": {
                "cultivated_occupied_mu": "12.5",
                "basic_farmland_occupied_mu": "6",
                "restored_mu": "0",
                "open_cases": 2,
            },
        }
    )


def test_the_figures_are_bounded_decimals() -> None:
    with pytest.raises(ValueError, match="less than or equal to 1500000"):
        _figures(cultivated_land=("1500001", "1"))
    with pytest.raises(ValueError, match="at most 4 decimal places"):
        _figures(basic_farmland=("1.00001", "1"))
    with pytest.raises(ValueError, match="float"):
        QuarterFigures.model_validate(
            {**_figures().model_dump(mode="json"), "findings": {"restored_mu": 1.5}}
        )


def test_a_report_is_entered_submitted_received_and_then_fixed() -> None:
    draft = domain.enter_report(
        None, township="xinyi", quarter="2025Q1", figures=_figures(), by="t", at=NOW
    )
    again = domain.enter_report(
        draft, township="xinyi", quarter="2025Q1", figures=_figures(), by="t", at=NOW
    )
    with pytest.raises(StateError, match="only a submitted report"):
        domain.receive_report(again, by="city", at=NOW)
    submitted = domain.submit_report(again, by="t", at=NOW)
    assert submitted.status is ReportStatus.submitted
    with pytest.raises(StateError, match="can no longer change"):
        domain.enter_report(
            submitted, township="xinyi", quarter="2025Q1", figures=_figures(), by="t", at=NOW
        )
    received = domain.receive_report(submitted, by="city", at=NOW)
    assert (received.status, received.received_by) == (ReportStatus.received, "city")


def test_the_check_names_each_unmet_target_and_discrepancy() -> None:
    figures = _figures(high_standard_farmland=("2000", "1500"))
    bus = BusFigures(
        cases_filed=3,
        cultivated_occupied_mu=Decimal("12.5"),
        basic_farmland_occupied_mu=Decimal("8"),
        restored_mu=Decimal("0"),
        open_cases=2,
    )
    findings = domain.check_report(figures, bus)
    messages = {(f.check, f.item): f.message for f in findings}
    assert messages[("unmet_target", "high_standard_farmland")] == (
        "高标准农田建设: 完成 1500 亩，低于目标 2000 亩"
    )
    assert ("discrepancy", "basic_farmland_occupied_mu") in messages  # 6 entered, 8 on the bus
    assert ("discrepancy", "cultivated_occupied_mu") not in messages  # the same figure
    assert ("discrepancy", "open_cases") not in messages
    # Reported met although the bus found 8 mu of basic farmland occupied and not restored.
    assert "8" in messages[("to_verify", "basic_farmland")]
    assert len(findings) == 4  # and cultivated land (12.5 mu) to verify


def test_quarters_are_refused_before_they_begin() -> None:
    assert domain.quarter_days("2025q1", TODAY) == (date(2025, 1, 1), date(2025, 3, 31))
    for text, reason in (("2025Q3", "has not begun"), ("2025Q5", "expected a quarter")):
        with pytest.raises(InvalidInput, match=reason):
            domain.quarter_days(text, TODAY)


# --- the assessment -----------------------------------------------------------------


def test_the_assessment_shows_every_township_with_its_record() -> None:
    approved = domain.decide_talk(_talk(), APPROVE, by="c", at=NOW, today=TODAY)
    draft = domain.enter_report(
        None,
        township="xinyi",
        quarter="2025Q1",
        figures=_figures(basic_farmland=("500", "400")),
        by="t",
        at=NOW,
    )
    bus = BusFigures(0, Decimal("12.5"), Decimal("6"), Decimal("0"), 2)
    view = domain.assessment(
        year=2025,
        today=date(2025, 6, 2),
        generated_at=NOW,
        names={"xinyi": "新义街道", "duizhen": "兑镇镇"},
        records=domain.YearRecords(
            talks=[approved],
            notices=[Notice("TB-1", "duizhen", 2025, "praise", "措施得力", "city", NOW)],
            vetoes=[Veto("xinyi", 2025, "重大问题", "city", NOW)],
            reports={("xinyi", "2025Q1"): domain.submit_report(draft, by="t", at=NOW)},
            bus={("xinyi", "2025Q1"): bus},
        ),
    )
    xinyi, duizhen = view.townships
    assert xinyi.rectifications.overdue == 1 and xinyi.talks[0].rectification == "overdue"
    assert xinyi.veto is not None and xinyi.veto.reason == "重大问题"
    assert (xinyi.reports_submitted, xinyi.reports_received) == (1, 0)
    assert [q.status for q in xinyi.quarters] == ["submitted", "missing"]
    assert xinyi.quarters[0].unmet_targets == ["永久基本农田保护面积: 完成 400 亩，低于目标 500 亩"]
    assert [n.text for n in duizhen.praise] == ["措施得力"] and duizhen.veto is None


# --- the access table ---------------------------------------------------------------

CITY = Principal("department-city_government", Role.department, "city_government")
ORGANIZATION = Principal("department-organization", Role.department, "organization")
XINYI = Principal("township-xinyi", Role.township, township="xinyi")
OFFICER = Principal("case-officer", Role.case_officer)
SUBSCRIBER = Principal("subscriber", Role.subscriber)
FINANCE = Principal("department-finance", Role.department, "finance")


@pytest.mark.parametrize(
    ("principal", "method", "path", "allowed"),
    [
        (OFFICER, "POST", "/v1/talks", True),
        (XINYI, "POST", "/v1/talks", False),
        (CITY, "POST", "/v1/talks/WT-2025-000001/decision", True),
        (XINYI, "POST", "/v1/talks/WT-2025-000001/decision", False),  # cannot decide a talk
        (FINANCE, "POST", "/v1/talks/WT-2025-000001/decision", False),
        (XINYI, "POST", "/v1/townships/xinyi/talks/WT-1/rectification", True),
        (XINYI, "POST", "/v1/townships/duizhen/talks/WT-1/rectification", False),
        (XINYI, "PUT", "/v1/townships/xinyi/reports/2025Q1", True),
        (XINYI, "PUT", "/v1/townships/duizhen/reports/2025Q1", False),
        (XINYI, "GET", "/v1/townships/duizhen/reports/2025Q1", False),
        (CITY, "PUT", "/v1/townships/xinyi/reports/2025Q1", False),
        (CITY, "POST", "/v1/townships/xinyi/reports/2025Q1/receipt", True),
        (XINYI, "POST", "/v1/townships/xinyi/reports/2025Q1/receipt", False),
        (CITY, "POST", "/v1/townships/xinyi/vetoes", True),
        (ORGANIZATION, "POST", "/v1/townships/xinyi/vetoes", False),
        (ORGANIZATION, "GET", "/v1/assessments/2025", True),
        (CITY, "GET", "/v1/assessments/2025", True),
        (FINANCE, "GET", "/v1/assessments/2025", False),
        (XINYI, "GET", "/v1/assessments/2025", False),
        (SUBSCRIBER, "GET", "/v1/assessments/2025", False),
        (SUBSCRIBER, "GET", "/v1/townships/xinyi/reports/2025Q1", False),
    ],
)
def test_the_access_table_for_township_accountability(
    principal: Principal, method: str, path: str, allowed: bool
) -> None:
    assert (decide(principal, method, path) is None) == allowed
