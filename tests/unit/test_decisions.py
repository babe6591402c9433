"""Every measure starts exactly where its seed sentence covers the case (过惩相当).

One row per measure: a case that starts it, and the nearest cases that must not (unused
or construction land, a residence, no project, permitted works, no afforestation, no
agricultural activity). The table must name every measure in the catalogue.
"""

from __future__ import annotations

from typing import Any

import pytest

from events.catalogue import Fact, LiftTrigger, Stage, Target, load_catalogue
from events.decisions import (
    UNRECORDED_FACTS,
    correct,
    decide,
    established,
    lifted_by,
)
from events.land import LandClass
from events.models import CaseFacts, Parcel
from services.referrals.domain import automatic_referrals

CATALOGUE = load_catalogue()
SITE = {"location": "孝义市兑镇镇东村北侧", "real_estate_unit": "141181001002GB00123F00010001"}


def facts(**changes: Any) -> CaseFacts:
    return CaseFacts.model_validate({"site": SITE, **changes})


def project(
    *, started: bool = True, permit: bool = False, sector: str | None = None
) -> dict[str, Any]:
    return {
        "code": "P-1",
        "name": "厂房",
        "works_started": started,
        "construction_permit": permit,
        "sector": sector,
    }


RESIDENCE = facts(building_use="residence")
STORAGE = facts(building_use="storage")
BUSINESS = facts(building_use="business_premises")
UNPERMITTED_WORKS = facts(project=project())
PERMITTED_WORKS = facts(project=project(permit=True))
WORKS_NOT_STARTED = facts(project=project(started=False))
AFFORESTATION = facts(illegal_afforestation=True)
FARMING = facts(non_compliant_farming=True)
TRANSPORT_WORKS = facts(project=project(sector="transport"))
WATER_WORKS = facts(project=project(started=False, sector="water"))
MUNICIPAL_WORKS = facts(project=project(sector="municipal"))
IN_RESERVE = facts(in_nature_reserve=True)
NOT_IN_RESERVE = facts(in_nature_reserve=False)

CULTIVATED = LandClass.cultivated
BASIC = LandClass.permanent_basic_farmland
CONSTRUCTION = LandClass.construction
UNUSED = LandClass.unused
OTHER_AGRICULTURAL = LandClass.other_agricultural

Case = tuple[LandClass, CaseFacts]

# measure: (a case that starts it, [the nearest cases that must not])
SENTENCES: dict[str, tuple[Case, list[Case]]] = {
    # 行政审批局：对于未取得用地手续的各类项目，不予核发施工许可证。
    "refuse_construction_permit": (
        (CULTIVATED, PERMITTED_WORKS),
        [(CULTIVATED, BUSINESS), (CONSTRUCTION, UNPERMITTED_WORKS)],
    ),
    # 发改局：未取得用地预审和选址意见书的，不予批准可行性研究报告
    "refuse_feasibility_approval": (
        (BASIC, WORKS_NOT_STARTED),
        [(CULTIVATED, RESIDENCE), (UNUSED, WORKS_NOT_STARTED)],
    ),
    # 住建局：在取得合法用地手续前不得开工建设 (transport and water projects are their
    # own regulators', not housing's)
    "halt_works": (
        (CULTIVATED, UNPERMITTED_WORKS),
        [(CULTIVATED, STORAGE), (CULTIVATED, TRANSPORT_WORKS), (BASIC, WATER_WORKS)],
    ),
    # 交通运输局：…交通运输项目…在取得合法用地手续前不得开工建设
    "halt_transport_works": (
        (CULTIVATED, TRANSPORT_WORKS),
        [
            (CULTIVATED, UNPERMITTED_WORKS),  # sector not recorded
            (CULTIVATED, MUNICIPAL_WORKS),
            (BASIC, WATER_WORKS),
            (CONSTRUCTION, TRANSPORT_WORKS),
        ],
    ),
    # 水利局：督促水利类重大项目依法办理用地手续
    "supervise_water_project_land_procedures": (
        (BASIC, WATER_WORKS),
        [
            (CULTIVATED, WORKS_NOT_STARTED),
            (CULTIVATED, TRANSPORT_WORKS),
            (UNUSED, WATER_WORKS),
            (CULTIVATED, IN_RESERVE),
        ],
    ),
    # 供水、供电、燃气、金融企业不得为违法占用耕地施工项目或以违法占地建筑作为生产经营场所的…
    "refuse_water_supply": (
        (CULTIVATED, BUSINESS),
        [(CULTIVATED, RESIDENCE), (UNUSED, BUSINESS), (CULTIVATED, AFFORESTATION)],
    ),
    "refuse_power_supply": (
        (CULTIVATED, WORKS_NOT_STARTED),
        [(CULTIVATED, RESIDENCE), (CONSTRUCTION, BUSINESS), (CULTIVATED, STORAGE)],
    ),
    "refuse_gas_supply": ((BASIC, BUSINESS), [(CULTIVATED, FARMING), (UNUSED, BUSINESS)]),
    "refuse_loans": (
        (CULTIVATED, UNPERMITTED_WORKS),
        [(CULTIVATED, RESIDENCE), (OTHER_AGRICULTURAL, BUSINESS)],
    ),
    # 应急、教育、文旅、卫健、消防、能源等部门对未取得合法用地手续以违法建筑作为生产经营场所的…
    "refuse_licence": (
        (CULTIVATED, BUSINESS),
        [(CULTIVATED, UNPERMITTED_WORKS), (CULTIVATED, RESIDENCE), (UNUSED, BUSINESS)],
    ),
    # 市场监管局：依职责加强对市场主体住所（经营场所）的监督管理
    "supervise_business_premises": (
        (BASIC, BUSINESS),
        [(CULTIVATED, STORAGE), (CONSTRUCTION, BUSINESS)],
    ),
    # 林业局：对于违规造林行为…不统计造林面积、不发放补贴
    "refuse_afforestation_subsidy": (
        (CULTIVATED, AFFORESTATION),
        [(CULTIVATED, FARMING), (OTHER_AGRICULTURAL, AFFORESTATION)],
    ),
    # 对不符合耕地用途管制要求的农业生产经营活动，取消相关扶持措施
    "cancel_agricultural_support": (
        (BASIC, FARMING),
        [(CULTIVATED, AFFORESTATION), (UNUSED, FARMING)],
    ),
    # 各级各部门不得以任何名义为违法占用耕地的企业、个人提供财政资金支持。
    "refuse_fiscal_funding": (
        (CULTIVATED, RESIDENCE),
        [(CONSTRUCTION, BUSINESS), (UNUSED, RESIDENCE)],
    ),
    "refuse_funding": ((BASIC, STORAGE), [(CONSTRUCTION, RESIDENCE)]),
    # 将…违法违规用地企业法人、自然人的行政处罚等信用信息…公示 (after the penalty)
    "publish_credit_record": ((CULTIVATED, RESIDENCE), [(OTHER_AGRICULTURAL, RESIDENCE)]),
    # 财政局：负责指导、监督…没收的构筑物、建筑物或土地等罚没财物管理工作
    "supervise_confiscated_property": ((CULTIVATED, BUSINESS), [(CONSTRUCTION, BUSINESS)]),
}


def parcels(land: LandClass, area: str = "0.5") -> list[Parcel]:
    return [Parcel.model_validate({"land_class": land, "area_mu": area})]


def started(measure: str, case: Case) -> bool:
    stage = CATALOGUE.measures()[measure].starts_at
    land, case_facts = case
    return measure in {d.measure for d in decide(CATALOGUE, [stage], parcels(land), case_facts)}


def test_the_table_names_every_measure() -> None:
    assert set(SENTENCES) == set(CATALOGUE.measures())


@pytest.mark.parametrize("measure", sorted(SENTENCES))
def test_a_measure_starts_where_its_sentence_covers_the_case(measure: str) -> None:
    case, _ = SENTENCES[measure]
    assert started(measure, case)


@pytest.mark.parametrize(
    ("measure", "case"),
    [(measure, case) for measure, (_, nearest) in sorted(SENTENCES.items()) for case in nearest],
    ids=lambda value: value if isinstance(value, str) else f"{value[0]}",
)
def test_a_measure_does_not_start_on_the_nearest_case_its_sentence_leaves_out(
    measure: str, case: Case
) -> None:
    assert not started(measure, case)


def test_unused_land_starts_nothing_at_any_stage() -> None:
    """The issue's first finding: 0.5 mu of unused land, business premises and all."""
    everything = facts(
        building_use="business_premises",
        project=project(),
        illegal_afforestation=True,
        non_compliant_farming=True,
    )
    assert decide(CATALOGUE, list(Stage), parcels(UNUSED), everything) == []
    assert decide(CATALOGUE, list(Stage), parcels(CONSTRUCTION), everything) == []


def test_a_residence_on_farmland_starts_only_what_is_held_against_the_subject() -> None:
    decisions = decide(CATALOGUE, [Stage.filing], parcels(CULTIVATED), RESIDENCE)
    assert {d.measure for d in decisions} == {"refuse_fiscal_funding", "refuse_funding"}
    assert {d.target for d in decisions} == {Target.subject}


def test_a_decision_says_why() -> None:
    [power] = [
        d
        for d in decide(CATALOGUE, [Stage.filing], parcels(BASIC), BUSINESS)
        if d.measure == "refuse_power_supply"
    ]
    assert power.target is Target.site
    assert power.land == (BASIC,)
    assert power.facts == (Fact.business_premises,)
    assert "business_premises" in power.rule and "construction_project" in power.rule


def test_mixed_parcels_match_on_their_farmland() -> None:
    land = parcels(CONSTRUCTION, "3") + parcels(CULTIVATED, "0.2")
    [loans] = [
        d for d in decide(CATALOGUE, [Stage.filing], land, BUSINESS) if d.measure == "refuse_loans"
    ]
    assert loans.land == (CULTIVATED,)


def test_the_facts_established() -> None:
    assert established(RESIDENCE) == frozenset()
    assert established(UNPERMITTED_WORKS) == {
        Fact.construction_project,
        Fact.works_started,
        Fact.works_without_permit,
    }
    assert established(PERMITTED_WORKS) == {Fact.construction_project, Fact.works_started}
    assert established(WORKS_NOT_STARTED) == {Fact.construction_project}
    assert established(TRANSPORT_WORKS) >= {Fact.construction_project, Fact.transport_project}
    assert established(WATER_WORKS) == {Fact.construction_project, Fact.water_project}
    assert established(MUNICIPAL_WORKS) & {Fact.transport_project, Fact.water_project} == set()
    assert established(IN_RESERVE) == {Fact.in_nature_reserve}
    assert established(NOT_IN_RESERVE) == frozenset()


def test_a_sector_or_reserve_not_recorded_is_possible_and_establishes_nothing() -> None:
    """Cases filed before these facts existed validate and keep what they started."""
    old = CaseFacts.model_validate(
        {"site": SITE, "project": {"code": "P-1", "name": "厂房", "works_started": True}}
    )
    assert old.in_nature_reserve is None and old.project is not None
    assert old.project.sector is None
    assert established(old) == established(UNPERMITTED_WORKS)
    assert established(UNRECORDED_FACTS) == frozenset()


def test_the_threshold_starts_no_measure() -> None:
    """Accountability is a referral now (catalogue `referrals`), not a block."""
    assert decide(CATALOGUE, [Stage.accountability], parcels(BASIC, "6"), BUSINESS) == []


def referred(stages: list[Stage], land: LandClass, case_facts: CaseFacts) -> list[str]:
    """The referral kinds the registry sends by itself for this case at these stages."""
    found = established(case_facts)
    return [
        sent.kind.code
        for stage in stages
        for sent in automatic_referrals(CATALOGUE, stage, frozenset({land}), found)
    ]


@pytest.mark.parametrize("land", list(LandClass))
def test_a_site_in_a_nature_reserve_is_referred_to_ecology_at_filing(land: LandClass) -> None:
    """Mining, roads, dams, building: an occupation inside a reserve, whatever the land."""
    assert referred([Stage.filing], land, IN_RESERVE) == ["nature_reserve"]
    assert CATALOGUE.referral("nature_reserve").to == "ecology_environment"


@pytest.mark.parametrize("case_facts", [NOT_IN_RESERVE, UNRECORDED_FACTS, BUSINESS])
def test_a_site_outside_a_reserve_or_not_recorded_is_not_referred(case_facts: CaseFacts) -> None:
    assert "nature_reserve" not in referred(list(Stage), CULTIVATED, case_facts)
    assert referred([Stage.filing], CULTIVATED, case_facts) == []


def test_the_threshold_sends_its_referrals_and_hand_referrals_are_never_automatic() -> None:
    assert referred([Stage.accountability], BASIC, RESIDENCE) == [
        "criminal",
        "discipline",
        "major_case_report",
    ]
    by_hand = {k.code for k in CATALOGUE.referrals if k.starts_at is None}
    everything = facts(building_use="business_premises", project=project(), in_nature_reserve=True)
    assert by_hand and not by_hand & set(referred(list(Stage), BASIC, everything))


def test_each_measure_appears_once_though_departments_share_it() -> None:
    codes = [d.measure for d in decide(CATALOGUE, list(Stage), parcels(BASIC), BUSINESS)]
    assert len(codes) == len(set(codes))
    assert codes.count("refuse_licence") == 1


def test_a_correction_to_a_residence_ends_what_the_business_premises_started() -> None:
    change = correct(
        CATALOGUE, [Stage.filing], (parcels(CULTIVATED), BUSINESS), (parcels(CULTIVATED), RESIDENCE)
    )
    assert change.starts == []
    assert set(change.ends) == {
        "refuse_licence",
        "supervise_business_premises",
        "refuse_water_supply",
        "refuse_power_supply",
        "refuse_gas_supply",
        "refuse_loans",
    }


def test_a_correction_that_moves_the_site_ends_and_starts_the_site_measures_only() -> None:
    moved = BUSINESS.model_copy(
        update={"site": BUSINESS.site.model_copy(update={"location": "另一处"})}
    )
    change = correct(
        CATALOGUE, [Stage.filing], (parcels(CULTIVATED), BUSINESS), (parcels(CULTIVATED), moved)
    )
    site_measures = {
        d.measure
        for d in decide(CATALOGUE, [Stage.filing], parcels(CULTIVATED), BUSINESS)
        if d.target is Target.site
    }
    assert set(change.ends) == site_measures
    assert {d.measure for d in change.starts} == site_measures


def test_a_correction_to_construction_land_ends_everything_at_the_stages_reached() -> None:
    before = decide(CATALOGUE, [Stage.filing, Stage.penalty], parcels(CULTIVATED), BUSINESS)
    change = correct(
        CATALOGUE,
        [Stage.filing, Stage.penalty],
        (parcels(CULTIVATED), BUSINESS),
        (parcels(CONSTRUCTION), BUSINESS),
    )
    assert set(change.ends) == {d.measure for d in before}
    assert "publish_credit_record" in change.ends


def test_a_correction_that_finds_farmland_starts_what_it_now_covers() -> None:
    change = correct(
        CATALOGUE,
        [Stage.filing],
        (parcels(CONSTRUCTION), UNPERMITTED_WORKS),
        (parcels(BASIC), UNPERMITTED_WORKS),
    )
    assert change.ends == []
    assert "halt_works" in {d.measure for d in change.starts}
    assert "publish_credit_record" not in {d.measure for d in change.starts}  # no penalty yet


def test_land_procedures_lift_the_project_halt_but_not_the_credit_record() -> None:
    lifted = lifted_by(CATALOGUE, LiftTrigger.land_procedures_obtained)
    assert {"halt_works", "refuse_construction_permit", "refuse_power_supply"} <= set(lifted)
    assert "publish_credit_record" not in lifted
    assert "refuse_afforestation_subsidy" not in lifted  # trees on farmland: restoration ends it


def test_every_measure_ends_with_a_revocation() -> None:
    assert set(lifted_by(CATALOGUE, LiftTrigger.revoked)) == set(CATALOGUE.measures())
