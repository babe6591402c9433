"""Pacing generated cases into a Registry and walking them through their lifecycle, with
idempotency keys derived from the seed, so a rerun on the same day writes nothing twice."""

from __future__ import annotations

import asyncio
import heapq
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pydantic import BaseModel

from demo.generator import DemoGenerator
from events.identifiers import (
    mask_name,
)
from events.models import (
    BuildingUse,
    CaseDetails,
    ConfiscationDetails,
    LandProceduresDetails,
    PenaltyDetails,
    RectificationDetails,
    RestorationDetails,
    RevocationDetails,
)
from services.access import Principal, Role
from services.registry.domain import AlreadySigned, CaseStatus, IllegalTransition, Step, next_status
from services.registry.handlers import NotFound, Registry, SignOffDetails
from services.registry.views import CaseSummary, RestorationSummary


@dataclass
class DemoStats:
    """What a demo run wrote; the CLI prints it at the end."""

    filed: int = 0
    accountability: int = 0
    clues: int = 0
    measures_started: int = 0  # at filing, over every case
    started_nothing: int = 0  # filings whose facts call for no measure at all
    steps: Counter[Step] = field(default_factory=Counter)  # lifecycle steps recorded

    def count(self, step: Step) -> None:
        """Count one recorded lifecycle step."""
        self.steps[step] += 1

    def __str__(self) -> str:
        steps = ", ".join(f"{step.value} {count}" for step, count in sorted(self.steps.items()))
        return (
            f"{self.filed} filed ({self.accountability} to accountability, "
            f"{self.started_nothing} starting no measure, {self.measures_started} measures "
            f"started), {self.clues} clues; steps: {steps or 'none'}"
        )


@dataclass
class _Case:
    """A filed demo case, its known status and the steps still to record."""

    number: int
    case_id: str
    status: CaseStatus
    steps: deque[tuple[Step, BaseModel]] = field(default_factory=deque)
    recorded: int = 0


def plan_steps(
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
        steps = plan_steps(self.gen, self.rng, details)
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
