"""Pure blocklist rules: which lists a violation event changes, and what an entry says.

The builder keeps, for every measure in the catalogue, which subjects it blocks and why;
the measures served to utilities and banks (events.topics.BLOCKLIST_MEASURES) are also
published, one compacted record per subject. The rules are the departments' own table
(services.departments.domain.RULES), so a list can never disagree with a department.

A block is held against its measure's target: the subject wherever it acts (loans), or
the case's site (supply), which the entry names by the keyed hashes of the site's
identifiers, so a utility refuses supply at that site only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from events.catalogue import Catalogue, Department, Fact, Measure, Target
from events.land import LandClass
from events.models import BlocklistCase, BlocklistEntry, MeasureDecision, Payload
from services.departments.domain import Effect, effects


@dataclass(frozen=True)
class ListHashes:
    """A case's subject and site hashed under one published list's own key
    (events.subject_keys): what that list's entry names, and nothing any other list's
    subscribers could confirm."""

    measure: str
    subject_hash: str
    site_hashes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListedCase:
    """A case as the builder keeps it: its subject as a keyed hash and a masked name
    (never the ID), and its site as the keyed hashes of the site's identifiers, under the
    deployment key (for the central check), and under each published list's key."""

    case_id: str
    subject_hash: str
    subject_kind: str
    masked_name: str
    site_hashes: tuple[str, ...] = ()
    lists: tuple[ListHashes, ...] = ()

    def on(self, measure: str) -> ListHashes:
        """This case's hashes under `measure`'s key."""
        for hashes in self.lists:
            if hashes.measure == measure:
                return hashes
        raise LookupError(f"case {self.case_id} has no hashes for the list of {measure}")


@dataclass(frozen=True)
class Why:
    """Why a block holds: what the registry's decision matched (events.decisions)."""

    target: Target | None = None  # None: applied before targets were recorded
    rule: str = ""
    facts: tuple[Fact, ...] = ()
    land: tuple[LandClass, ...] = ()

    @classmethod
    def of(cls, decision: MeasureDecision) -> Why:
        return cls(decision.target, decision.rule, decision.facts, decision.land)


@dataclass(frozen=True)
class ActiveBlock:
    measure: str
    department: str
    case_id: str
    legal_basis: str
    since: datetime
    case: ListedCase
    why: Why = field(default_factory=Why)

    def held_at(self, query: frozenset[str]) -> bool:
        """Whether this block's site is one of the `query` site hashes."""
        return not query.isdisjoint(self.case.site_hashes)


def owners(catalogue: Catalogue) -> dict[str, tuple[Department, Measure]]:
    """Each measure code once, with the first department that owns it.

    Measures shared by several departments (no licence, no funding) have one rule and
    one legal basis, so one list answers for all of them.
    """
    return {
        code: (departments[0], departments[0].measure(code))
        for code, departments in catalogue.owners().items()
    }


def list_effects(
    catalogue: Catalogue, owner: dict[str, tuple[Department, Measure]], payload: Payload
) -> list[tuple[Department, Effect]]:
    """What `payload` changes on the lists, lifts before applies as the departments do;
    `owner` is `owners(catalogue)`, computed once by the caller rather than per event."""
    changes: list[tuple[Department, Effect]] = []
    for department in catalogue.departments:
        for effect in effects(department, payload):
            if owner[effect.measure.code][0] is department:
                changes.append((department, effect))
    return changes


def entry_for(
    measure: Measure, key_id: str, blocks: list[ActiveBlock], version: int
) -> BlocklistEntry | None:
    """The compacted record of one subject on one list; None (a lift) when unblocked.

    The subject and sites are named by their hashes under the list's own key (`key_id`).
    The target is the catalogue's; each case names the rule and facts that started it
    and, where the measure is held against a site, the hashes of that case's site."""
    if not blocks:
        return None
    ordered = sorted(blocks, key=lambda b: (b.since, b.case_id))
    first = ordered[0]
    by_site = measure.targets is Target.site
    return BlocklistEntry(
        measure=measure.code,
        department=first.department,
        target=measure.targets,
        subject_hash=first.case.on(measure.code).subject_hash,
        key_id=key_id,
        subject_kind=first.case.subject_kind,
        masked_name=first.case.masked_name,
        cases=[
            BlocklistCase(
                case_id=b.case_id,
                legal_basis=b.legal_basis,
                since=b.since,
                rule=b.why.rule,
                facts=b.why.facts,
                site_hashes=list(b.case.on(measure.code).site_hashes) if by_site else [],
            )
            for b in ordered
        ],
        version=version,
    )
