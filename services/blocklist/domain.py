"""Pure blocklist rules: which lists a violation event changes, and what an entry says.

The builder keeps, for every measure in the catalogue, which subjects it blocks and why;
the measures served to utilities and banks (events.topics.BLOCKLIST_MEASURES) are also
published, one compacted record per subject. The rules are the departments' own table
(services.departments.domain.RULES), so a list can never disagree with a department.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from events.catalogue import Catalogue, Department, Measure
from events.models import BlocklistCase, BlocklistEntry, Payload
from services.departments.domain import Apply, Effect, effects


@dataclass(frozen=True)
class ListedSubject:
    """A case's subject as the builder keeps it: keyed hash and masked name, never the ID."""

    case_id: str
    subject_hash: str
    subject_kind: str
    masked_name: str


@dataclass(frozen=True)
class ActiveBlock:
    measure: str
    department: str
    case_id: str
    legal_basis: str
    since: datetime
    subject: ListedSubject


def owners(catalogue: Catalogue) -> dict[str, tuple[Department, Measure]]:
    """Each measure code once, with the first department that owns it.

    Measures shared by several departments (no licence, no funding) have one rule and
    one legal basis, so one list answers for all of them.
    """
    found: dict[str, tuple[Department, Measure]] = {}
    for department in catalogue.departments:
        for measure in department.measures:
            found.setdefault(measure.code, (department, measure))
    return found


def list_effects(
    catalogue: Catalogue, owner: dict[str, tuple[Department, Measure]], payload: Payload
) -> list[tuple[Department, Effect]]:
    """What `payload` changes on the lists, one effect per measure code; `owner` is
    `owners(catalogue)`, computed once by the caller rather than once per event."""
    seen: set[str] = set()
    changes: list[tuple[Department, Effect]] = []
    for department in catalogue.departments:
        for effect in effects(department, payload):
            code = effect.measure.code
            if code not in seen and owner[code][0] is department:
                seen.add(code)
                changes.append((department, effect))
    return changes


def is_apply(effect: Effect) -> bool:
    return isinstance(effect, Apply)


def entry_for(measure: str, key_id: str, blocks: list[ActiveBlock]) -> BlocklistEntry | None:
    """The compacted record of one subject on one list; None (a tombstone) when unblocked."""
    if not blocks:
        return None
    ordered = sorted(blocks, key=lambda b: (b.since, b.case_id))
    first = ordered[0]
    return BlocklistEntry(
        measure=measure,
        department=first.department,
        subject_hash=first.subject.subject_hash,
        key_id=key_id,
        subject_kind=first.subject.subject_kind,
        masked_name=first.subject.masked_name,
        cases=[
            BlocklistCase(case_id=b.case_id, legal_basis=b.legal_basis, since=b.since)
            for b in ordered
        ],
    )
