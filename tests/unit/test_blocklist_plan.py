"""The builder's plan for one batch, without a database: which blocks it writes, in what
final state, where each case is held, and which list entries it publishes again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import cast

import pytest

from events.catalogue import Fact, Stage, Target, load_catalogue
from events.decisions import correct, decide
from events.envelope import Envelope, new_event
from events.models import (
    CaseCorrected,
    CaseDetails,
    CaseFacts,
    CaseFiled,
    CaseRevoked,
    Payload,
    Site,
)
from events.privacy import SubjectHasher
from events.signing import Signer, TrustStore
from events.subject_keys import measure_hashers
from events.topics import BLOCKLIST_MEASURES
from services.blocklist.domain import ActiveBlock, ListedCase, ListHashes, Why, entry_for
from services.blocklist.handlers import Builder, BuildOutcome
from services.blocklist.ports import BlocklistStore
from services.consuming import Issuer
from tests.support import business_premises_facts, case_body, new_unit_code

POWER, LOANS = "refuse_power_supply", "refuse_loans"
START = datetime(2026, 10, 12, tzinfo=UTC)


@pytest.fixture
def hasher() -> SubjectHasher:
    return SubjectHasher(b"k" * 32)


@pytest.fixture
def builder(hasher: SubjectHasher) -> Builder:
    return Builder(
        load_catalogue(),
        cast(BlocklistStore, object()),  # the plan reads and writes nothing
        trust=TrustStore([]),
        issuer=Issuer(Signer.generate("builder-test"), "/authorities/blocklist_builder"),
        hasher=hasher,
        list_hashers=measure_hashers(b"k" * 32, BLOCKLIST_MEASURES),
        clock=lambda: START,
    )


class Case:
    """One case's events, as the registry would decide them."""

    def __init__(self, site: Site) -> None:
        body = case_body(("cultivated", "2"))
        body["facts"] = business_premises_facts(site=site.model_dump(mode="json"))
        self.details = CaseDetails.model_validate(body)
        self.facts = self.details.facts
        self.case_id = "T2026-0001"
        self.events: list[tuple[Envelope, Payload]] = []

    def _add(self, payload: Payload) -> None:
        at = START + timedelta(minutes=len(self.events))
        envelope = new_event(payload, source="/authorities/natural_resources", time=at)
        self.events.append((envelope, payload))

    def filed(self) -> Case:
        starts = decide(load_catalogue(), [Stage.filing], self.details.parcels, self.facts)
        self._add(CaseFiled(case_id=self.case_id, starts=starts, **self.details.model_dump()))
        return self

    def corrected(self, facts: CaseFacts) -> Case:
        parcels = self.details.parcels
        change = correct(load_catalogue(), [Stage.filing], (parcels, self.facts), (parcels, facts))
        self._add(
            CaseCorrected(
                case_id=self.case_id,
                parcels=parcels,
                facts=facts,
                reason="survey",
                starts=change.starts,
                ends=change.ends,
            )
        )
        self.facts = facts
        return self

    def revoked(self) -> Case:
        self._add(
            CaseRevoked(
                case_id=self.case_id, court="法院", decision_no="(2026)1号", revoked_on=date.today()
            )
        )
        return self


def _site() -> Site:
    return Site(location="孝义市兑镇镇东村北侧厂房", real_estate_unit=new_unit_code())


def _facts(site: Site, **changes: object) -> CaseFacts:
    facts = business_premises_facts(site=site.model_dump(mode="json"))
    return CaseFacts.model_validate({**facts, **changes})


def test_a_filing_records_the_site_and_why_each_block_holds(
    builder: Builder, hasher: SubjectHasher
) -> None:
    site = _site()
    case = Case(site).filed()
    writes, touched = builder._plan(case.events, {}, set(), BuildOutcome())

    [(listed, _)] = writes.cases
    assert listed.site_hashes == tuple(hasher.site_hashes(site))
    power = next(a for a in writes.applied if a.measure == POWER)
    assert power.why.target is Target.site and Fact.business_premises in power.why.facts
    assert power.why.rule and power.why.land
    assert (POWER, listed.subject_hash) in touched and (LOANS, listed.subject_hash) in touched
    assert writes.lifted == []


def test_a_block_applied_and_lifted_in_one_batch_is_written_then_lifted(
    builder: Builder,
) -> None:
    case = Case(_site()).filed().revoked()
    writes, _ = builder._plan(case.events, {}, set(), BuildOutcome())
    applied = {a.measure for a in writes.applied}
    lifted = {x.measure for x in writes.lifted}
    assert POWER in applied and POWER in lifted  # the row exists, and ends lifted


def test_a_correction_that_moves_the_site_replaces_the_block_and_its_site(
    builder: Builder, hasher: SubjectHasher
) -> None:
    old, new = _site(), _site()
    case = Case(old).filed()
    filed_plan, _ = builder._plan(case.events, {}, set(), BuildOutcome())
    [(listed, _)] = filed_plan.cases
    active = {(a.measure, case.case_id) for a in filed_plan.applied}
    case.events.clear()
    case.corrected(_facts(new))

    writes, touched = builder._plan(
        case.events, {case.case_id: listed}, set(active), BuildOutcome()
    )
    [moved] = writes.sites
    assert moved.site_hashes == tuple(hasher.site_hashes(new))
    power = next(a for a in writes.applied if a.measure == POWER)
    assert power.case.site_hashes == moved.site_hashes
    assert POWER not in {x.measure for x in writes.lifted}  # re-applied: only the upsert
    assert LOANS not in {a.measure for a in writes.applied}  # a subject block does not move
    assert (POWER, listed.subject_hash) in touched


def test_ended_then_started_again_in_one_batch_leaves_only_the_last_apply(
    builder: Builder,
) -> None:
    site = _site()
    case = Case(site).filed()
    filed_plan, _ = builder._plan(case.events, {}, set(), BuildOutcome())
    [(listed, _)] = filed_plan.cases
    active = {(a.measure, case.case_id) for a in filed_plan.applied}
    case.events.clear()
    case.corrected(_facts(site, project=None, building_use="residence")).corrected(_facts(site))

    writes, _ = builder._plan(case.events, {case.case_id: listed}, set(active), BuildOutcome())
    [power] = [a for a in writes.applied if a.measure == POWER]
    assert power.event_id == case.events[1][0].id  # the second correction's
    assert POWER not in {x.measure for x in writes.lifted}


def test_an_entry_names_site_hashes_only_for_a_measure_held_against_sites() -> None:
    measures = load_catalogue().measures()
    lists = (
        ListHashes(POWER, "d" * 64, ("b" * 64, "c" * 64)),
        ListHashes(LOANS, "e" * 64, ("f" * 64,)),
    )
    case = ListedCase("T1", "a" * 64, "organization", "孝***", ("9" * 64,), lists)
    block = ActiveBlock(POWER, "power_supply", "T1", "seed", START, case, Why(Target.site, "rule"))
    power = entry_for(measures[POWER], "0" * 16, [block], 7)
    assert power is not None and power.target is Target.site and power.version == 7
    # Each list names the subject and site under its own key, never the deployment's.
    assert power.subject_hash == "d" * 64
    assert power.cases[0].site_hashes == ["b" * 64, "c" * 64]
    loans = entry_for(measures[LOANS], "0" * 16, [block], 8)
    assert loans is not None and loans.target is Target.subject
    assert loans.subject_hash == "e" * 64
    assert loans.cases[0].site_hashes == []
    assert entry_for(measures[POWER], "0" * 16, [], 9) is None  # a signed lift
