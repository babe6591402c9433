"""The pure, seeded generator of sample subjects, cases and lifecycle steps: one seed always
gives one sequence, so the unit tests can check it without a database."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import TypeVar

from demo.samples import (
    ANY_LAND,
    APPROVERS,
    AREA_IN_M2_SHARE,
    CENT,
    CLUE_SOURCES,
    COMPANY_SUFFIXES,
    COURTS,
    DIRECTIONS,
    FARMLAND,
    FEMALE_NAMES,
    FOUND_WITHIN_DAYS,
    INDUSTRIES,
    MALE_NAMES,
    ORG_DIVISIONS,
    ORGANIZATION_SHARE,
    PARCEL_RIGHTS,
    RECTIFICATIONS,
    REUSE_SUBJECT,
    SCENARIOS,
    SURNAMES,
    TRADE_WORDS,
    VILLAGES,
    VIOLATION_LABELS,
    XIAOYI,
    Scenario,
)
from events.identifiers import (
    USCC_ALPHABET,
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
