"""The central check (GET /v1/checks): for a department or company without a replica.

A measure held against a site (water, power, gas) answers for a subject AT a site: the
caller names the site (a real-estate unit code, a parcel code, or the address), and the
answer is "blocked" with the cases at that site, or "clear" with `blocked_elsewhere` and
nothing more when the subject's blocks are at other sites. A measure held against the
subject (loans) answers for the subject wherever it acts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from events.catalogue import Catalogue, Fact, Measure, Target
from events.errors import InvalidEvent
from events.land import LandClass
from events.privacy import SubjectHasher, parse_subject_id
from services.blocklist.domain import ActiveBlock, owners
from services.blocklist.ports import BlocklistStore
from services.errors import InvalidInput


class CheckedCase(BaseModel):
    """A case behind a block, and why it holds."""

    case_id: str
    legal_basis: str
    since: datetime
    rule: str = Field(description="The condition the case met (empty for older blocks).")
    facts: list[Fact] = Field(description="The facts of the case the condition matched.")
    land: list[LandClass] = Field(description="The occupied land classes it matched.")


class CheckAnswer(BaseModel):
    status: Literal["blocked", "clear"]
    measure: str
    target: Target = Field(description="What the measure is held against: subject or site.")
    subject_kind: Literal["organization", "person"]
    masked_name: str | None
    blocked_elsewhere: bool = Field(
        default=False,
        description="Clear at this site, but the subject is blocked at another site: "
        "nothing more is said about it.",
    )
    cases: list[CheckedCase]
    checked_at: datetime


def site_required(measure: Measure) -> InvalidInput:
    return InvalidInput(
        "site",
        f"required for {measure.code}: it is held against the site of the illegal project "
        "or premises, not the subject everywhere; give the real-estate unit code "
        "(不动产单元代码), the parcel code (宗地代码) or the address where it is asked for",
    )


class CentralChecks:
    def __init__(
        self,
        store: BlocklistStore,
        hasher: SubjectHasher,
        catalogue: Catalogue,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.measures = owners(catalogue)
        self.clock = clock

    async def check(self, measure: str, subject: str, site: str | None = None) -> CheckAnswer:
        """Whether `subject` (a raw USCC or resident ID) is blocked under `measure`, at
        `site` where the measure is held against one (required there, ignored else)."""
        if measure not in self.measures:
            known = ", ".join(sorted(self.measures))
            raise InvalidInput("measure", f"unknown measure {measure!r}; known: {known}")
        entry = self.measures[measure][1]
        try:
            kind, normalised = parse_subject_id(subject)
        except InvalidEvent as exc:
            raise InvalidInput(exc.field, exc.reason) from exc
        here: frozenset[str] | None = None
        if entry.targets is Target.site:
            if site is None or not site.strip():
                raise site_required(entry)
            try:
                here = frozenset(self.hasher.query_site_hashes(site))
            except InvalidEvent as exc:
                raise InvalidInput("site", exc.reason) from exc
        blocks = await self.store.active(measure, self.hasher.hash_id(normalised))
        found = blocks if here is None else [b for b in blocks if b.held_at(here)]
        return CheckAnswer(
            status="blocked" if found else "clear",
            measure=measure,
            target=entry.targets,
            subject_kind=kind,
            masked_name=found[0].case.masked_name if found else None,
            blocked_elsewhere=bool(blocks) and not found,
            cases=[_checked(b) for b in found],
            checked_at=self.clock(),
        )


def _checked(block: ActiveBlock) -> CheckedCase:
    return CheckedCase(
        case_id=block.case_id,
        legal_basis=block.legal_basis,
        since=block.since,
        rule=block.why.rule,
        facts=list(block.why.facts),
        land=list(block.why.land),
    )
