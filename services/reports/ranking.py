"""The annual satellite-enforcement ranking of townships (§四(五)) and the city's rule that
flags the townships it holds to account."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from events.models import DecimalStr
from services.registry.domain import BASIC_FARMLAND_THRESHOLD_MU, CULTIVATED_THRESHOLD_MU
from services.reports.common import ReportModel
from services.reports.periods import Period

MAX_RANKING_MU = Decimal(1_500_000)  # the whole of Xiaoyi is about 1.41 million mu
_RULE_KEYS = ("cultivated_mu", "basic_farmland_mu", "top")


@dataclass(frozen=True)
class SatelliteCaseRow:
    case_id: str
    township: str
    found_on: date
    basic_farmland_mu: Decimal
    cultivated_mu: Decimal
    revoked: bool


class RankedTownship(ReportModel):
    rank: int
    township: str
    township_name: str
    cases: int
    basic_farmland_mu: DecimalStr
    cultivated_mu: DecimalStr  # permanent basic farmland included
    large_cases: int
    flagged: bool  # by the city's ranking rule (RankingRule), not by the per-case thresholds
    flag_reason: str


class LargeCase(ReportModel):
    case_id: str
    township: str
    township_name: str
    found_on: date
    basic_farmland_mu: DecimalStr
    cultivated_mu: DecimalStr
    reason: str


class RankingReport(ReportModel):
    kind: Literal["ranking"] = "ranking"
    year: int
    generated_at: datetime
    rule: str  # the city's rule that flagged the townships, in words
    revoked_excluded: int
    rows: list[RankedTownship]
    large_cases: list[LargeCase]

    @property
    def slug(self) -> str:
        return f"ranking-{self.year}"


def threshold_reasons(basic_farmland_mu: Decimal, cultivated_mu: Decimal) -> list[str]:
    """Seed §四(五): ≥ 5 mu permanent basic farmland or ≥ 10 mu cultivated land."""
    reasons = []
    if basic_farmland_mu >= BASIC_FARMLAND_THRESHOLD_MU:
        reasons.append(f"永久基本农田 {basic_farmland_mu} 亩 ≥ {BASIC_FARMLAND_THRESHOLD_MU} 亩")
    if cultivated_mu >= CULTIVATED_THRESHOLD_MU:
        reasons.append(f"耕地 {cultivated_mu} 亩 ≥ {CULTIVATED_THRESHOLD_MU} 亩")
    return reasons


@dataclass(frozen=True)
class RankingRule:
    """The city's rule for "对年度土地卫片执法发现占用耕地面积较大的乡镇、街道，严肃追责问责"
    (seed §四(五)): the seed leaves "较大" to the city. A township is flagged when its year's
    satellite findings reach `cultivated_mu` of cultivated land (basic farmland included) or
    `basic_farmland_mu` of permanent basic farmland, or when it ranks within the `top` by
    cultivated area (ties share a rank). Unset parts flag nothing."""

    cultivated_mu: Decimal | None = None
    basic_farmland_mu: Decimal | None = None
    top: int = 0

    def reasons(self, rank: int, cultivated: Decimal, basic: Decimal) -> list[str]:
        found = []
        if self.top and rank <= self.top and cultivated > 0:
            found.append(f"耕地面积排名第 {rank}（前 {self.top} 名）")
        if self.basic_farmland_mu is not None and basic >= self.basic_farmland_mu:
            found.append(f"永久基本农田 {basic} 亩 ≥ {self.basic_farmland_mu} 亩")
        if self.cultivated_mu is not None and cultivated >= self.cultivated_mu:
            found.append(f"耕地 {cultivated} 亩 ≥ {self.cultivated_mu} 亩")
        return found

    def describe(self) -> str:
        parts = []
        if self.top:
            parts.append(f"耕地面积前 {self.top} 名")
        if self.cultivated_mu is not None:
            parts.append(f"耕地合计 ≥ {self.cultivated_mu} 亩")
        if self.basic_farmland_mu is not None:
            parts.append(f"永久基本农田合计 ≥ {self.basic_farmland_mu} 亩")
        return "；".join(parts) or "未设定（不标记）"


def parse_ranking_rule(document: object, source: str) -> RankingRule:
    """The `ranking:` mapping of the city's configuration; a wrong value is refused with
    the file and the key named."""
    if not isinstance(document, Mapping) or not isinstance(document.get("ranking"), Mapping):
        raise ValueError(f"{source}: ranking: a mapping with cultivated_mu, basic_farmland_mu, top")
    rule = document["ranking"]
    unknown = sorted(set(rule) - set(_RULE_KEYS))
    if unknown:
        raise ValueError(f"{source}: ranking: unknown key(s) {', '.join(map(str, unknown))}")
    cultivated = _area_limit(rule.get("cultivated_mu"), f"{source}: ranking.cultivated_mu")
    basic = _area_limit(rule.get("basic_farmland_mu"), f"{source}: ranking.basic_farmland_mu")
    top = rule.get("top", 0)
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 100:
        raise ValueError(f"{source}: ranking.top: a whole number from 0 to 100, got {top!r}")
    return RankingRule(cultivated, basic, top)


def _area_limit(value: object, where: str) -> Decimal | None:
    """An area in mu within (0, MAX_RANKING_MU], or None when unset."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str | float):
        raise ValueError(f"{where}: expected an area in mu, got {value!r}")
    try:
        area = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{where}: not a number: {value!r}") from None
    if not area.is_finite() or not 0 < area <= MAX_RANKING_MU:
        raise ValueError(
            f"{where}: must be more than 0 and at most {MAX_RANKING_MU} mu, got {value!r}"
        )
    return area


def satellite_ranking(
    *,
    period: Period,
    generated_at: datetime,
    names: Mapping[str, str],
    rows: Sequence[SatelliteCaseRow],
    rule: RankingRule,
) -> RankingReport:
    """Townships by cultivated land found occupied by satellite imagery; courts' revocations
    are left out, since a revoked finding is not an occupation."""
    in_year = [row for row in rows if period.first_day <= row.found_on <= period.last_day]
    counted = [row for row in in_year if not row.revoked]
    return RankingReport(
        year=period.first_day.year,
        generated_at=generated_at,
        rule=rule.describe(),
        revoked_excluded=len(in_year) - len(counted),
        rows=_ranked_townships(counted, names, rule),
        large_cases=_large_cases(counted, names),
    )


def _ranked_townships(
    counted: Sequence[SatelliteCaseRow], names: Mapping[str, str], rule: RankingRule
) -> list[RankedTownship]:
    """By cultivated area, then basic farmland, then code; equal areas share a rank."""
    per: dict[str, list[SatelliteCaseRow]] = defaultdict(list)
    for row in counted:
        per[row.township].append(row)
    totals = {
        code: (
            sum((row.cultivated_mu for row in cases), Decimal(0)),
            sum((row.basic_farmland_mu for row in cases), Decimal(0)),
        )
        for code, cases in per.items()
    }
    order = sorted(totals, key=lambda code: (-totals[code][0], -totals[code][1], code))
    ranked: list[RankedTownship] = []
    for position, code in enumerate(order, start=1):
        cultivated, basic = totals[code]
        same = ranked and (ranked[-1].cultivated_mu, ranked[-1].basic_farmland_mu) == totals[code]
        rank = ranked[-1].rank if same else position
        reasons = rule.reasons(rank, cultivated, basic)
        ranked.append(
            RankedTownship(
                rank=rank,
                township=code,
                township_name=names.get(code, code),
                cases=len(per[code]),
                basic_farmland_mu=basic,
                cultivated_mu=cultivated,
                large_cases=sum(
                    bool(threshold_reasons(r.basic_farmland_mu, r.cultivated_mu)) for r in per[code]
                ),
                flagged=bool(reasons),
                flag_reason="；".join(reasons),
            )
        )
    return ranked


def _large_cases(counted: Sequence[SatelliteCaseRow], names: Mapping[str, str]) -> list[LargeCase]:
    """The cases that reach the per-case thresholds on their own, largest first."""
    large = []
    for row in sorted(counted, key=lambda r: (-r.cultivated_mu, r.case_id)):
        reasons = threshold_reasons(row.basic_farmland_mu, row.cultivated_mu)
        if reasons:
            large.append(
                LargeCase(
                    case_id=row.case_id,
                    township=row.township,
                    township_name=names.get(row.township, row.township),
                    found_on=row.found_on,
                    basic_farmland_mu=row.basic_farmland_mu,
                    cultivated_mu=row.cultivated_mu,
                    reason="；".join(reasons),
                )
            )
    return large
