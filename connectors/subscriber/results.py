"""What a check answers: blocked (with the cases and their legal basis), clear, or stale.

Plain immutable values with no I/O, so the HTTP layer, the CLI and a host application
render the same answer. `Clear` carries only the measure and whether the subject is
blocked at another site: two instances per measure are made once and returned by every
clear check, which is most of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from events.catalogue import Target

Status = Literal["blocked", "clear", "stale"]


@dataclass(frozen=True, slots=True)
class BlockCase:
    """One case behind a block: the seed sentence that is its legal basis, the rule and
    facts that started it, and (for a measure held against a site) its site's hashes."""

    case_id: str
    legal_basis: str
    since: datetime
    rule: str = ""
    facts: tuple[str, ...] = ()
    site_hashes: tuple[str, ...] = ()

    def held_at(self, query: frozenset[str]) -> bool:
        """Whether this case's site is one of the `query` site hashes."""
        return not query.isdisjoint(self.site_hashes)

    def as_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "legal_basis": self.legal_basis,
            "since": self.since.isoformat(),
            "rule": self.rule,
            "facts": list(self.facts),
        }


@dataclass(frozen=True, slots=True)
class Blocked:
    """The subject is blocked under the measure (at the site asked about, for a measure
    held against a site): refuse, and cite these cases."""

    status: ClassVar[Status] = "blocked"
    measure: str
    target: Target
    subject_hash: str
    subject_kind: str
    masked_name: str
    department: str
    cases: tuple[BlockCase, ...]

    @property
    def legal_basis(self) -> tuple[str, ...]:
        """Each distinct legal basis, in case order."""
        return tuple(dict.fromkeys(case.legal_basis for case in self.cases))

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "measure": self.measure,
            "target": self.target.value,
            "subject_hash": self.subject_hash,
            "subject_kind": self.subject_kind,
            "masked_name": self.masked_name,
            "department": self.department,
            "legal_basis": list(self.legal_basis),
            "cases": [case.as_json() for case in self.cases],
        }


@dataclass(frozen=True, slots=True)
class Clear:
    """No block under the measure here, and the replica is within its freshness bound.

    `blocked_elsewhere`: the measure is held against sites and the subject is blocked at
    another one. Supply here is not refused; nothing more is said about the other site.
    """

    status: ClassVar[Status] = "clear"
    measure: str
    blocked_elsewhere: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "measure": self.measure,
            "blocked_elsewhere": self.blocked_elsewhere,
        }


@dataclass(frozen=True, slots=True)
class Stale:
    """The replica cannot vouch for the present: the caller's fallback policy decides.

    `last_known` is what the replica held at its watermark (a block may have been lifted
    since, or a new one added), for a policy such as "refuse if it was blocked".
    """

    status: ClassVar[Status] = "stale"
    measure: str
    watermark: datetime | None
    age_seconds: float | None
    bound_seconds: float
    last_known: Blocked | Clear

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "measure": self.measure,
            "watermark": None if self.watermark is None else self.watermark.isoformat(),
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 3),
            "bound_seconds": self.bound_seconds,
            "reason": (
                "no heartbeat yet from every partition"
                if self.watermark is None
                else f"last heartbeat {self.age_seconds:.1f} s ago, bound {self.bound_seconds} s"
            ),
            "last_known": self.last_known.as_json(),
        }


CheckResult = Blocked | Clear | Stale
