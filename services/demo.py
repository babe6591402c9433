"""A demo feed: realistic, seeded sample cases walked through their lifecycle.

The generator is pure (no I/O, one seeded RNG), so a seed always yields the same data and
the unit tests can check it without a database. `run_demo` paces it into a Registry with
idempotency keys derived from the seed, so a rerun on the same day writes nothing twice.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal, TypeVar

from pydantic import BaseModel

from events.identifiers import (
    USCC_ALPHABET,
    mask_name,
    resident_id_check_character,
    uscc_check_character,
)
from events.land import M2_PER_MU, LandClass
from events.models import (
    BuildingUse,
    CaseDetails,
    CaseFacts,
    ClosureDetails,
    ClueDetails,
    ClueSource,
    ConfiscationDetails,
    Coordinates,
    LandProceduresDetails,
    Parcel,
    PenaltyDetails,
    Project,
    ProjectSector,
    RectificationDetails,
    RestorationDetails,
    RevocationDetails,
    Site,
    Subject,
)
from services.access import Principal, Role
from services.registry.domain import AlreadySigned, CaseStatus, IllegalTransition, Step, next_status
from services.registry.handlers import NotFound, Registry, SignOffDetails
from services.registry.views import CaseSummary, RestorationSummary

# Xiaoyi (孝义市) and its prefecture-level city Lüliang (吕梁市): where the seed's cases are.
XIAOYI = "141181"
ORG_DIVISIONS = (XIAOYI, XIAOYI, XIAOYI, "141100", "141102")

TRADE_WORDS = (
    "鑫源", "兴旺", "金泰", "宏达", "晋丰", "华鑫", "恒通", "瑞丰", "盛世", "永信",
    "汇通", "昌盛", "德润", "福源", "利民", "三晋", "中阳", "胜溪", "广泰", "佳禾",
)  # fmt: skip
INDUSTRIES = (
    "建材", "物流", "煤焦", "养殖", "农业开发", "砖业", "汽修", "仓储",
    "混凝土", "石料", "农业科技", "商贸",
)  # fmt: skip
COMPANY_SUFFIXES = ("有限公司", "有限公司", "有限公司", "有限责任公司")

SURNAMES = (
    "王", "李", "张", "刘", "赵", "郭", "任", "梁", "武", "侯",
    "田", "韩", "冯", "贾", "温", "宋", "杨", "薛", "高", "孙",
)  # fmt: skip
MALE_NAMES = (
    "建军", "国平", "志刚", "海平", "俊峰", "文斌", "晓东", "卫东", "宏伟", "建平",
    "利军", "永刚", "鹏", "强", "伟", "勇", "军", "斌",
)  # fmt: skip
FEMALE_NAMES = (
    "丽萍", "永红", "桂兰", "秀英", "红梅", "小平", "玉兰", "美兰", "晓燕", "慧", "静", "芳",
)  # fmt: skip

FARMLAND = ((LandClass.cultivated, 60), (LandClass.permanent_basic_farmland, 40))
NOT_FARMLAND = (
    (LandClass.construction, 40),
    (LandClass.unused, 35),
    (LandClass.other_agricultural, 25),
)
ANY_LAND = (*FARMLAND, *NOT_FARMLAND)
VIOLATIONS = (
    ("illegal_construction", "违法建设"),
    ("illegal_occupation", "非法占地"),
    ("unauthorised_change_of_use", "擅自改变土地用途"),
    ("illegal_mining", "非法采矿"),
    ("greenhouse_housing", "大棚房"),
)
VIOLATION_LABELS = dict(VIOLATIONS)
ProjectKind = Literal["none", "unpermitted", "permitted", "not_started", "sometimes"]


@dataclass(frozen=True)
class Scenario:
    """A kind of case the bureau files, with the facts its measures' conditions rest on:
    most small cases call for a few measures or none, as the seed's sentences say."""

    code: str
    label: str
    weight: int
    land: tuple[tuple[LandClass, int], ...]
    violations: tuple[tuple[str, int], ...]
    organization_share: float
    uses: tuple[tuple[BuildingUse, int], ...]
    places: tuple[str, ...]  # what stands at the site, for its location text
    project: ProjectKind = "none"
    farming: bool = False
    afforestation: bool = False
    large_share: float = 0.03  # parcels big enough to start accountability
    # Whose sector a project is (None: the officers did not record it).
    sectors: tuple[tuple[ProjectSector | None, int], ...] = ((None, 1),)
    in_reserve: bool | None = None  # inside a nature reserve; None: not recorded


SCENARIOS = (
    Scenario(
        "residence", "耕地上建住宅", 22, FARMLAND,
        (("illegal_construction", 60), ("illegal_occupation", 40)), 0.05,
        ((BuildingUse.residence, 1),), ("民房", "宅院", "自建住宅"),
    ),
    Scenario(
        "storage", "耕地上建库房", 8, FARMLAND,
        (("illegal_construction", 50), ("illegal_occupation", 50)), 0.5,
        ((BuildingUse.storage, 1),), ("库房", "堆料场", "彩钢棚"),
    ),
    Scenario(
        "farming", "违反耕地用途管制的农业生产", 14, FARMLAND,
        (("unauthorised_change_of_use", 1),), 0.3,
        ((BuildingUse.none, 1),), ("鱼塘", "草皮种植地", "挖塘养殖区"),
        farming=True, large_share=0.1,
    ),
    Scenario(
        "afforestation", "耕地上违规造林", 8, FARMLAND,
        (("unauthorised_change_of_use", 1),), 0.4,
        ((BuildingUse.none, 1),), ("苗木地", "绿化林带", "经济林"),
        afforestation=True, large_share=0.15,
    ),
    Scenario(
        "business_premises", "违法建筑作为生产经营场所", 14, FARMLAND,
        (("illegal_construction", 70), ("illegal_occupation", 30)), 0.85,
        ((BuildingUse.business_premises, 1),), ("厂房", "汽修厂", "商铺", "物流仓储场"),
        large_share=0.08,
    ),
    Scenario(
        "project", "未取得用地手续的施工项目", 12, FARMLAND,
        (("illegal_construction", 60), ("illegal_occupation", 40)), 0.95,
        ((BuildingUse.none, 60), (BuildingUse.business_premises, 40)),
        ("项目施工场地", "在建厂区", "搅拌站"),
        project="sometimes", large_share=0.3,
        sectors=((None, 40), ("municipal", 35), ("other", 25)),
    ),
    Scenario(
        "transport_project", "未取得合法用地手续的交通建设项目", 4, FARMLAND,
        (("illegal_occupation", 60), ("illegal_construction", 40)), 1.0,
        ((BuildingUse.none, 1),), ("公路改线施工段", "桥梁施工便道", "县道拓宽工地"),
        project="sometimes", large_share=0.3, sectors=(("transport", 1),),
    ),
    Scenario(
        "water_project", "未办理用地手续的水利项目", 3, FARMLAND,
        (("illegal_occupation", 70), ("illegal_construction", 30)), 1.0,
        ((BuildingUse.none, 1),), ("河道治理工地", "灌区渠道工程", "水库除险加固施工区"),
        project="sometimes", large_share=0.2, sectors=(("water", 1),),
    ),
    Scenario(
        "nature_reserve", "自然保护区内违法占地", 3, ANY_LAND,
        (("illegal_mining", 40), ("illegal_construction", 30), ("illegal_occupation", 30)), 0.7,
        ((BuildingUse.none, 70), (BuildingUse.storage, 30)), ("采石场", "施工便道", "拦河坝"),
        in_reserve=True,
    ),
    Scenario(
        "greenhouse_housing", "大棚房", 6, FARMLAND,
        (("greenhouse_housing", 1),), 0.5,
        ((BuildingUse.residence, 50), (BuildingUse.business_premises, 50)),
        ("农业大棚", "设施农业用房"),
    ),
    Scenario(
        "not_farmland", "非耕地上的土地案件", 14, NOT_FARMLAND,
        (("illegal_occupation", 45), ("illegal_mining", 25), ("illegal_construction", 30)), 0.5,
        ((BuildingUse.none, 50), (BuildingUse.storage, 25), (BuildingUse.business_premises, 25)),
        ("荒地", "采石场", "空闲建设用地"),
        project="sometimes", large_share=0.05,
    ),
)  # fmt: skip
SCENARIO_LABELS = {scenario.code: scenario.label for scenario in SCENARIOS}
# The second letter of a parcel code (GB/T 37346) by what the land is used for.
PARCEL_RIGHTS = {
    BuildingUse.residence: "C",  # 宅基地使用权
    BuildingUse.business_premises: "B",  # 建设用地使用权
    BuildingUse.storage: "B",
    BuildingUse.none: "D",  # 土地承包经营权
}
APPROVERS = (
    ("山西省人民政府", "晋政地"),
    ("吕梁市人民政府", "吕政地"),
    ("孝义市人民政府", "孝政地"),
)
CLUE_SOURCES = (
    (ClueSource.satellite, 30),
    (ClueSource.patrol, 25),
    (ClueSource.tip, 12),
    (ClueSource.drone, 10),
    (ClueSource.camera, 8),
    (ClueSource.petition, 8),
    (ClueSource.online, 4),
    (ClueSource.media, 3),
)
VILLAGES = (
    "东关", "西王", "南庄", "北桥", "前营", "后峪", "白壁关", "贾家庄", "郭家庄", "李家庄",
)  # fmt: skip
DIRECTIONS = ("东", "南", "西", "北", "东南", "西北")
RectificationAction = Literal["demolition", "confiscation", "restoration_works", "other"]
RECTIFICATIONS: tuple[tuple[RectificationAction, str, int], ...] = (
    ("demolition", "违法建筑物、构筑物已全部拆除，建筑垃圾已清运", 45),
    ("restoration_works", "已完成土地平整、覆土，恢复耕种条件", 30),
    ("confiscation", "没收在非法占用的土地上新建的建筑物和其他设施", 15),
    ("other", "已退还非法占用的土地", 10),
)
# Administrative cases in Lüliang: first instance at a county court, appeal at the city.
COURTS = (
    ("孝义市人民法院", "晋1181行初"),
    ("离石区人民法院", "晋1102行初"),
    ("吕梁市中级人民法院", "晋11行终"),
)

FOUND_WITHIN_DAYS = 90
REUSE_SUBJECT = 0.15
ORGANIZATION_SHARE = 0.6
AREA_IN_M2_SHARE = 0.1
CENT = Decimal("0.01")
_T = TypeVar("_T")


class DemoGenerator:
    """Seeded sample data for Redline; pure, so one seed always gives one sequence."""

    def __init__(self, seed: int, townships: Sequence[str], today: date) -> None:
        if not townships:
            raise ValueError("the demo needs at least one township code")
        self.rng = random.Random(seed)  # noqa: S311 - sample data, not secrets
        self.townships = tuple(townships)
        self.today = today
        self._used: deque[Subject] = deque(maxlen=500)
        self._decisions: dict[str, int] = {}
        self.nr_officers = tuple(self._person_name() for _ in range(5))
        self.agriculture_officers = tuple(self._person_name() for _ in range(5))

    # --- subjects -------------------------------------------------------------------

    def subject(self, organization_share: float = ORGANIZATION_SHARE) -> Subject:
        """A fresh violator: an enterprise (about 60% unless told) or a person, with a
        valid id."""
        if self.rng.random() < organization_share:
            return self._organization()
        return self._person()

    def _organization(self) -> Subject:
        rng = self.rng
        if rng.random() < 0.7:  # codes issued since 2015 start MA
            body = "MA" + "".join(rng.choices(USCC_ALPHABET, k=7))
        else:  # an older organisation code carried over
            body = "".join(rng.choices("0123456789", k=8)) + rng.choice(USCC_ALPHABET)
        first17 = "91" + rng.choice(ORG_DIVISIONS) + body
        name = f"孝义市{rng.choice(TRADE_WORDS)}{rng.choice(INDUSTRIES)}"
        return Subject(
            kind="organization",
            id=first17 + uscc_check_character(first17),
            name=name + rng.choice(COMPANY_SUFFIXES),
        )

    def _person(self) -> Subject:
        rng = self.rng
        male = rng.random() < 0.7
        start, end = date(1950, 1, 1), date(2000, 12, 31)
        born = start + timedelta(days=rng.randint(0, (end - start).days))
        # The 17th digit is odd for men and even for women (GB 11643).
        sequence = f"{rng.randint(0, 99):02d}{rng.choice('13579' if male else '02468')}"
        first17 = f"{XIAOYI}{born:%Y%m%d}{sequence}"
        return Subject(
            kind="person",
            id=first17 + resident_id_check_character(first17),
            name=self._person_name(male),
        )

    def _person_name(self, male: bool | None = None) -> str:
        if male is None:
            male = self.rng.random() < 0.6
        return self.rng.choice(SURNAMES) + self.rng.choice(MALE_NAMES if male else FEMALE_NAMES)

    # --- cases ----------------------------------------------------------------------

    def scenario(self) -> Scenario:
        return self._weighted([(scenario, scenario.weight) for scenario in SCENARIOS])

    def case_details(self, scenario: Scenario | None = None) -> CaseDetails:
        """A case to file, of a drawn kind (`SCENARIOS`); about 15% reuse an earlier
        violator, as repeat offenders exist."""
        rng = self.rng
        if scenario is None:
            scenario = self.scenario()
        subject = self.subject(scenario.organization_share)
        # a repeat offender of the same kind: a company's premises, a villager's house
        earlier = [s for s in self._used if s.kind == subject.kind]
        if earlier and rng.random() < REUSE_SUBJECT:
            subject = rng.choice(earlier)
        self._used.append(subject)
        count = rng.choices((1, 2, 3), (60, 30, 10))[0]
        parcels = [self._parcel(scenario.land, scenario.large_share)]
        # A farmland case often has a yard or access road on other land besides; a case
        # about other land is about that land only.
        more = ANY_LAND if scenario.land is FARMLAND else scenario.land
        parcels += [self._parcel(more, scenario.large_share) for _ in range(count - 1)]
        return CaseDetails(
            township=rng.choice(self.townships),
            subject=subject,
            parcels=parcels,
            facts=self.facts(scenario, subject),
            violation_kind=self._weighted(scenario.violations),
            source=self._weighted(CLUE_SOURCES),
            found_on=self._days_ago(FOUND_WITHIN_DAYS),
        )

    def facts(self, scenario: Scenario, subject: Subject) -> CaseFacts:
        """What the officers found: the site, the building's use, any project."""
        rng = self.rng
        use = self._weighted(scenario.uses)
        project = None
        kind = scenario.project
        if kind == "sometimes":
            kind = self._weighted([("unpermitted", 60), ("not_started", 25), ("permitted", 15)])
            if scenario.code == "not_farmland" and rng.random() < 0.6:
                kind = "none"
        if kind != "none":
            started = kind != "not_started"
            sector = self._weighted(scenario.sectors)
            project = Project(
                code=self._project_code(),
                name=self._project_name(sector, subject),
                works_started=started,
                construction_permit=kind == "permitted",
                sector=sector,
            )
        return CaseFacts(
            site=self._site(scenario, use),
            project=project,
            building_use=use,
            non_compliant_farming=scenario.farming,
            illegal_afforestation=scenario.afforestation,
            in_nature_reserve=scenario.in_reserve,
        )

    def _project_name(self, sector: ProjectSector | None, subject: Subject) -> str:
        rng = self.rng
        if sector == "transport":
            return f"{rng.choice(VILLAGES)}至{rng.choice(VILLAGES)}公路改建工程"
        if sector == "water":
            return f"{rng.choice(VILLAGES)}{rng.choice(('河道综合治理', '灌区续建配套'))}工程"
        owner = subject.name.removesuffix("有限公司").removesuffix("有限责任公司")
        return f"{owner}{rng.choice(('厂区', '物流园', '仓储', '生产线'))}建设项目"

    def _site(self, scenario: Scenario, use: BuildingUse) -> Site:
        """Where it is: a location text always; a parcel or real-estate unit code and the
        survey's coordinates where the officers recorded them."""
        rng = self.rng
        place = f"{rng.choice(VILLAGES)}村{rng.choice(DIRECTIONS)}侧{rng.choice(scenario.places)}"
        parcel = (
            f"{XIAOYI}{rng.randint(1, 30):03d}{rng.randint(1, 40):03d}"
            f"J{PARCEL_RIGHTS[use]}{rng.randint(1, 99999):05d}"
        )
        unit = None
        if use is not BuildingUse.none and rng.random() < 0.5:
            unit = f"{parcel}F{rng.randint(1, 99):04d}{rng.randint(1, 9999):04d}"
        coordinates = None
        if rng.random() < 0.4:  # Xiaoyi lies about 111.5-112.0 E, 36.9-37.3 N
            coordinates = Coordinates(
                longitude=Decimal(rng.randint(111_550_000, 111_990_000)).scaleb(-6),
                latitude=Decimal(rng.randint(36_950_000, 37_250_000)).scaleb(-6),
            )
        return Site(
            location=place,
            real_estate_unit=unit,
            parcel_code=parcel if unit is None and rng.random() < 0.6 else None,
            coordinates=coordinates,
        )

    def _project_code(self) -> str:
        """A 投资项目统一代码: year, division, sector, type, serial."""
        year = self.today.year - self.rng.randint(0, 3)
        return f"{year}-{XIAOYI}-{self.rng.choice(('04', '05', '26', '30'))}-01-" + (
            f"{self.rng.randint(1, 999999):06d}"
        )

    def _parcel(self, land: Sequence[tuple[LandClass, int]], large_share: float) -> Parcel:
        rng = self.rng
        land_class = self._weighted(land)
        # Some are large enough to start accountability; most are small.
        cents = rng.randint(800, 2500) if rng.random() < large_share else rng.randint(30, 400)
        area_mu = Decimal(cents).scaleb(-2)
        if rng.random() < AREA_IN_M2_SHARE:  # surveys report square metres
            return Parcel.from_m2(land_class, int(area_mu * M2_PER_MU))
        return Parcel(land_class=land_class, area_mu=area_mu)

    def clue(self, case: CaseDetails) -> ClueDetails:
        """The clue a case grew out of (线索 → 立案), reported the day it was found."""
        rng = self.rng
        area = sum((p.area_mu for p in case.parcels), Decimal(0))
        place = f"{rng.choice(VILLAGES)}村{rng.choice(DIRECTIONS)}侧"
        return ClueDetails(
            source=case.source,
            township=case.township,
            location=f"{place}约{rng.randint(1, 20) * 50}米",
            description=(
                f"发现疑似{VIOLATION_LABELS.get(case.violation_kind, case.violation_kind)}，"
                f"占地约{area:.1f}亩"
            ),
            reported_on=case.found_on,
        )

    # --- lifecycle steps ------------------------------------------------------------

    def penalty(self, since: date | None = None, area_mu: Decimal | None = None) -> PenaltyDetails:
        """A penalty decision; the fine is per square metre occupied, as the law sets it."""
        rng = self.rng
        decided_on = self._later(since, 7, 45)
        if area_mu is None:
            area_mu = Decimal(rng.randint(30, 1500)).scaleb(-2)
        area_m2 = (area_mu * M2_PER_MU).quantize(CENT)
        rate = rng.choice((100, 120, 150, 200, 300))
        return PenaltyDetails(
            decision_no=f"孝自然资罚〔{decided_on.year}〕{self._decision_no(decided_on)}号",
            decided_on=decided_on,
            fine_yuan=(area_m2 * rate).quantize(CENT),
            summary=(
                f"非法占用土地{area_mu:.2f}亩（{area_m2:.0f}平方米），责令退还非法占用的土地，"
                f"限期拆除新建的建筑物和其他设施、恢复土地原状，并处每平方米{rate}元罚款"
            ),
        )

    def rectification(self, since: date | None = None) -> RectificationDetails:
        """Rectification (整改): what was done on the ground."""
        action, notes = self._weighted([((a, n), w) for a, n, w in RECTIFICATIONS])
        return RectificationDetails(
            action=action,
            completed_on=self._later(since, 10, 60),
            notes=notes,
        )

    def restoration(self, since: date | None = None) -> RestorationDetails:
        """Restoration (复耕验收) needs both departments' sign-offs."""
        return RestorationDetails(
            verified_on=self._later(since, 15, 90),
            natural_resources_officer=self.rng.choice(self.nr_officers),
            agriculture_officer=self.rng.choice(self.agriculture_officers),
        )

    def revocation(self, since: date | None = None) -> RevocationDetails:
        """A court revoking the case in administrative litigation."""
        revoked_on = self._later(since, 30, 120)
        court, prefix = self.rng.choice(COURTS)
        return RevocationDetails(
            court=court,
            decision_no=f"（{revoked_on.year}）{prefix}{self.rng.randint(1, 150)}号",
            revoked_on=revoked_on,
        )

    def closure(self, since: date | None = None, *, legalised: bool = False) -> ClosureDetails:
        """Closure after the verified restoration, or after lawful land procedures."""
        reason = "复耕复垦经自然资源、农业农村部门联合验收合格，罚款已缴纳，予以结案"
        if legalised:
            reason = "已依法补办用地手续，罚款已缴纳，予以结案"
        return ClosureDetails(closed_on=self._later(since, 1, 15), reason=reason)

    def land_procedures(self, since: date | None = None) -> LandProceduresDetails:
        """Lawful land procedures obtained (补办用地手续): the conversion approved."""
        approved_on = self._later(since, 20, 120)
        approver, prefix = self.rng.choice(APPROVERS)
        return LandProceduresDetails(
            approval_no=f"{prefix}〔{approved_on.year}〕{self.rng.randint(1, 300)}号",
            approved_on=approved_on,
            approved_by=approver,
            notes="农用地转用和土地征收已批准，按规定补缴相关费用",
        )

    def confiscation(
        self, penalty: PenaltyDetails, since: date | None = None
    ) -> ConfiscationDetails:
        """The confiscation the penalty decided, carried out (没收到位)."""
        area = self.rng.randint(2, 40) * 50
        return ConfiscationDetails(
            decision_no=penalty.decision_no,
            completed_on=self._later(since or penalty.decided_on, 10, 60),
            property=f"在非法占用的土地上新建的建筑物和其他设施（建筑面积约{area}平方米）",
            notes="已移交财政部门监管",
        )

    # --- helpers --------------------------------------------------------------------

    def _weighted(self, choices: Sequence[tuple[_T, int]]) -> _T:
        return self.rng.choices([c for c, _ in choices], [w for _, w in choices])[0]

    def _days_ago(self, within: int) -> date:
        return self.today - timedelta(days=self.rng.randint(0, within))

    def _later(self, since: date | None, low: int, high: int) -> date:
        """A date some days after `since`, but never after today: the registry refuses that."""
        start = since if since is not None else self._days_ago(60)
        return min(start + timedelta(days=self.rng.randint(low, high)), self.today)

    def _decision_no(self, day: date) -> int:
        key = f"{day.year}"
        current = self._decisions.get(key, self.rng.randint(10, 60))
        self._decisions[key] = current + self.rng.randint(1, 3)
        return current


_COUNTERS = {
    Step.penalty: "penalties",
    Step.rectification: "rectifications",
    Step.restoration: "restorations",
    Step.revocation: "revocations",
    Step.closure: "closures",
    Step.land_procedures: "land_procedures",
    Step.confiscation: "confiscations",
}


@dataclass
class DemoStats:
    """What a demo run wrote; the CLI prints it at the end."""

    filed: int = 0
    accountability: int = 0
    penalties: int = 0
    rectifications: int = 0
    restorations: int = 0
    revocations: int = 0
    closures: int = 0
    land_procedures: int = 0
    confiscations: int = 0
    clues: int = 0
    measures_started: int = 0  # at filing, over every case
    started_nothing: int = 0  # filings whose facts call for no measure at all

    def count(self, step: Step) -> None:
        """Count one recorded lifecycle step."""
        name = _COUNTERS.get(step)
        if name is not None:
            setattr(self, name, getattr(self, name) + 1)


@dataclass
class _Case:
    """A filed demo case, its known status and the steps still to record."""

    number: int
    case_id: str
    status: CaseStatus
    steps: deque[tuple[Step, BaseModel]] = field(default_factory=deque)
    recorded: int = 0


def _plan(
    gen: DemoGenerator, rng: random.Random, case: CaseDetails
) -> list[tuple[Step, BaseModel]]:
    """The lifecycle a case will walk: dates chained, so each step follows the one before.

    A project or business premises sometimes obtains its land procedures (the case is
    legalised, then closed); a penalty is sometimes carried out by confiscation, which
    ends the case."""
    area = sum((p.area_mu for p in case.parcels), Decimal(0))
    steps: list[tuple[Step, BaseModel]] = []
    draw = rng.random()
    if draw < 0.05:  # a court revokes the case instead
        last = case.found_on
        if rng.random() < 0.7:
            penalty = gen.penalty(case.found_on, area)
            steps.append((Step.penalty, penalty))
            last = penalty.decided_on
        steps.append((Step.revocation, gen.revocation(last)))
        return steps
    if draw >= 0.52:  # stays filed for now
        return steps
    penalty = gen.penalty(case.found_on, area)
    return [(Step.penalty, penalty), *_after_penalty(gen, rng, case, penalty)]


def _after_penalty(
    gen: DemoGenerator, rng: random.Random, case: CaseDetails, penalty: PenaltyDetails
) -> list[tuple[Step, BaseModel]]:
    facts = case.facts
    may_legalise = facts.project is not None or (
        facts.building_use is BuildingUse.business_premises
    )
    if may_legalise and rng.random() < 0.25:  # land procedures made good
        procedures = gen.land_procedures(penalty.decided_on)
        closure = gen.closure(procedures.approved_on, legalised=True)
        return [(Step.land_procedures, procedures), (Step.closure, closure)]
    if rng.random() < 0.1:  # the buildings confiscated (没收到位): the case ends
        return [(Step.confiscation, gen.confiscation(penalty))]
    if rng.random() >= 0.8:
        return []
    rectification = gen.rectification(penalty.decided_on)
    steps: list[tuple[Step, BaseModel]] = [(Step.rectification, rectification)]
    if rectification.action == "confiscation" and rng.random() < 0.5:
        confiscation = gen.confiscation(penalty, rectification.completed_on)
        return [*steps, (Step.confiscation, confiscation)]
    if rng.random() < 0.15:  # a second round, e.g. demolition then restoration works
        rectification = gen.rectification(rectification.completed_on)
        steps.append((Step.rectification, rectification))
    if rng.random() < 0.6:
        restoration = gen.restoration(rectification.completed_on)
        steps.append((Step.restoration, restoration))
        steps.append((Step.closure, gen.closure(restoration.verified_on)))
    return steps


def _describe(step: Step, case_id: str, details: BaseModel) -> str:
    if isinstance(details, PenaltyDetails):
        return f"penalty {case_id} {details.decision_no} {details.fine_yuan} yuan"
    if isinstance(details, RectificationDetails):
        return f"rectified {case_id} {details.action}"
    if isinstance(details, RevocationDetails):
        return f"revoked {case_id} {details.court} {details.decision_no}"
    if isinstance(details, LandProceduresDetails):
        return f"legalised {case_id} {details.approved_by} {details.approval_no}"
    if isinstance(details, ConfiscationDetails):
        return f"confiscated {case_id} {details.decision_no}: the case ends"
    done = {Step.restoration: "restored", Step.closure: "closed"}
    return f"{done.get(step, str(step))} {case_id}"


def describe_facts(case: CaseDetails) -> str:
    """The case in a few words, as the feed prints it."""
    facts = case.facts
    found = [] if facts.building_use is BuildingUse.none else [str(facts.building_use)]
    if facts.project is not None:
        works = "works started" if facts.project.works_started else "works not started"
        permit = ", permitted" if facts.project.construction_permit else ""
        sector = f"{facts.project.sector} " if facts.project.sector else ""
        found.append(f"{sector}project ({works}{permit})")
    if facts.non_compliant_farming:
        found.append("non-compliant farming")
    if facts.illegal_afforestation:
        found.append("illegal afforestation")
    if facts.in_nature_reserve:
        found.append("inside a nature reserve")
    classes = sorted({str(parcel.land_class) for parcel in case.parcels})
    return f"{' + '.join(found) or 'no building'} on {', '.join(classes)}"


class _Feed:
    """One demo run: the generator, the pacing and the cases still walking their lifecycle."""

    def __init__(
        self,
        registry: Registry,
        gen: DemoGenerator,
        *,
        seed: int,
        interval: float,
        on_line: Callable[[str], None],
        stats: DemoStats,
    ) -> None:
        self.registry = registry
        self.gen = gen
        self.rng = random.Random(f"demo-schedule-{seed}")  # noqa: S311 - pacing, not secrets
        self.prefix = f"demo-{seed}-{gen.today:%Y%m%d}"
        self.interval = interval
        self.on_line = on_line
        self.stats = stats
        self.due: list[tuple[int, int, _Case]] = []  # (tick, filing number, case)
        self.tick = 0
        self.paced = False

    async def run(self, cases: int | None) -> DemoStats:
        while True:
            all_filed = cases is not None and self.stats.filed >= cases
            if self.due and (self.due[0][0] <= self.tick or all_filed):
                await self.record_next()
            elif not all_filed:
                await self.file_next()
            else:
                return self.stats
            self.tick += 1

    async def pace(self) -> None:
        """Sleep between actions, not before the first: a feed a person can follow."""
        if self.paced:
            await asyncio.sleep(self.interval)
        self.paced = True

    async def file_next(self) -> None:
        number = self.stats.filed + 1
        details = self.gen.case_details()
        if self.rng.random() < 0.3:  # some cases start as a reported clue
            await self.pace()
            clue = await self.registry.report_clue(
                self.gen.clue(details), f"{self.prefix}-{number}-clue"
            )
            self.stats.clues += 1
            self.on_line(f"clue {clue.clue_id} {details.source} {details.township}")
            details = details.model_copy(update={"clue_id": clue.clue_id})
        steps = _plan(self.gen, self.rng, details)
        await self.pace()
        summary = await self.registry.file_case(details, f"{self.prefix}-{number}")
        self.stats.filed += 1
        self.stats.accountability += summary.accountability_started
        self.stats.measures_started += len(summary.starts)
        self.stats.started_nothing += not summary.starts
        subject = details.subject
        name = subject.name if subject.kind == "organization" else mask_name(subject.name)
        area = sum((p.area_mu for p in details.parcels), Decimal(0))
        flag = " (accountability)" if summary.accountability_started else ""
        started = f"starts {len(summary.starts)} measures" if summary.starts else "starts none"
        self.on_line(
            f"filed {summary.case_id} {details.township} {name} {area:.2f} mu{flag}: "
            f"{describe_facts(details)}; {started}"
        )
        if steps:
            self._later(_Case(number, summary.case_id, summary.status, deque(steps)))

    async def record_next(self) -> None:
        _, _, case = heapq.heappop(self.due)
        step, details = case.steps.popleft()
        try:
            next_status(case.status, step)  # never ask for a transition known to be illegal
            await self.pace()
            key = f"{self.prefix}-{case.number}-{case.recorded + 1}-{step}"
            summary: CaseSummary
            if isinstance(details, RestorationDetails):
                summary = await sign_off_jointly(self.registry, case.case_id, details, key)
            else:
                summary = await self.registry.record_step(case.case_id, step, details, key)
        except (IllegalTransition, AlreadySigned, NotFound) as refused:  # changed meanwhile
            self.on_line(f"skipped {case.case_id} {step}: {refused}")
            return
        case.status = summary.status
        case.recorded += 1
        self.stats.count(step)
        self.on_line(_describe(step, case.case_id, details))
        if case.steps:
            self._later(case)

    def _later(self, case: _Case) -> None:
        heapq.heappush(self.due, (self.tick + self.rng.randint(2, 10), case.number, case))


async def sign_off_jointly(
    registry: Registry, case_id: str, details: RestorationDetails, key: str | None = None
) -> RestorationSummary:
    """Both bodies' sign-offs in turn, by the officers `details` names: the demo's (and the
    tests') way to verify a restoration, since one caller alone cannot."""
    signed = SignOffDetails(verified_on=details.verified_on)
    officer = Principal(details.natural_resources_officer, Role.case_officer)
    inspector = Principal(details.agriculture_officer, Role.agriculture_inspector)
    await registry.sign_off_restoration(
        case_id, officer, signed, None if key is None else f"{key}-natural_resources"
    )
    return await registry.sign_off_restoration(
        case_id, inspector, signed, None if key is None else f"{key}-agriculture"
    )


async def run_demo(
    registry: Registry,
    *,
    cases: int | None,
    interval: float,
    seed: int,
    today: date | None = None,
    on_line: Callable[[str], None] = print,
    stats: DemoStats | None = None,
) -> DemoStats:
    """File demo cases one by one, walking earlier ones through their lifecycle later on.

    `cases=None` runs until cancelled; pass `stats` to read the counts after a cancel.
    Keys are `demo-<seed>-<day>-<n>...`: the same seed on the same day replays the first
    answers instead of filing twice, and the plan (hence the keys) depends on the seed only.
    """
    if today is None:
        today = registry.clock().astimezone(registry.timezone).date()
    gen = DemoGenerator(seed, sorted(registry.townships), today)
    feed = _Feed(
        registry,
        gen,
        seed=seed,
        interval=interval,
        on_line=on_line,
        stats=stats if stats is not None else DemoStats(),
    )
    return await feed.run(cases)
