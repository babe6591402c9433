"""What realistic sample cases are made of: places, names, land, violations and the
scenarios a case follows, as in the seed's Xiaoyi and Lüliang."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from events.land import LandClass
from events.models import (
    BuildingUse,
    ClueSource,
    ProjectSector,
)

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
