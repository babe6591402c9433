"""The central check (GET /v1/checks): for a department or company without a replica.

A measure held against a site (water, power, gas) answers for a subject AT a site: the
caller names the site (a real-estate unit code, a parcel code, or the address), and the
answer is "blocked" with the cases at that site, or "clear" with `blocked_elsewhere` and
nothing more when the subject's blocks are at other sites. A measure held against the
subject (loans) answers for the subject wherever it acts.

It fails closed like a subscriber's replica: it answers only while the blocklist builder
has vouched for its tables within the freshness bound (the builder records when it was
last caught up, in the loop that sends the heartbeats); past it, or before any vouch, the
answer is stale (ListsAreStale, HTTP 503) with what the tables last held, never "clear".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from events.catalogue import Catalogue, Fact, Measure, Target
from events.errors import InvalidEvent
from events.land import LandClass
from events.privacy import SubjectHasher, parse_subject_id
from services.blocklist.domain import ActiveBlock, owners
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


class StaleAnswer(BaseModel):
    """The builder has not vouched for its tables within the bound: not "clear"."""

    status: Literal["stale"] = "stale"
    measure: str
    watermark: datetime | None = Field(
        description="When the builder last vouched for its tables (null: never)."
    )
    age_seconds: float | None
    bound_seconds: float
    reason: str
    last_known: CheckAnswer = Field(
        description="What the tables held: a block may have been lifted since, or added."
    )
    checked_at: datetime


class ListsAreStale(Exception):
    """A check the central tables cannot vouch for (answered 503 with `answer`)."""

    def __init__(self, answer: StaleAnswer) -> None:
        super().__init__(answer.reason)
        self.answer = answer


@dataclass(frozen=True)
class Vouched:
    """The builder's last vouch, and its age by the database's clock."""

    as_of: datetime
    age_seconds: float


class CheckStore(Protocol):
    """What the central check reads: the builder's tables and its last vouch."""

    async def active(self, measure: str, subject_hash: str) -> list[ActiveBlock]: ...

    async def vouched(self) -> Vouched | None: ...

    async def ping(self) -> None: ...


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
        store: CheckStore,
        hasher: SubjectHasher,
        catalogue: Catalogue,
        clock: Callable[[], datetime],
        *,
        freshness_bound: float = 30.0,
        vouch_cache_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.hasher = hasher
        self.measures = owners(catalogue)
        self.clock = clock
        self.freshness_bound = freshness_bound
        self.vouch_cache_seconds = vouch_cache_seconds
        self.monotonic = monotonic
        self._vouch: tuple[Vouched | None, float] | None = None  # (read, monotonic when)

    async def vouched(self) -> Vouched | None:
        """The builder's last vouch, read at most once per `vouch_cache_seconds`; its age
        advanced by the time since the read."""
        now = self.monotonic()
        if self._vouch is None or now - self._vouch[1] >= self.vouch_cache_seconds:
            self._vouch = (await self.store.vouched(), now)
        vouch, read_at = self._vouch
        if vouch is None:
            return None
        return Vouched(vouch.as_of, vouch.age_seconds + (now - read_at))

    async def ping(self) -> None:
        """The database behind the checks answers (else DatabaseError)."""
        await self.store.ping()

    async def check(self, measure: str, subject: str, site: str | None = None) -> CheckAnswer:
        """Whether `subject` (a raw USCC or resident ID) is blocked under `measure`, at
        `site` where the measure is held against one (required there, ignored else).

        Raises InvalidInput on bad input, and ListsAreStale when the builder has not
        vouched for its tables within the freshness bound."""
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
        vouch = await self.vouched()  # before the read: the tables are at least this fresh
        blocks = await self.store.active(measure, self.hasher.hash_id(normalised))
        found = blocks if here is None else [b for b in blocks if b.held_at(here)]
        answer = CheckAnswer(
            status="blocked" if found else "clear",
            measure=measure,
            target=entry.targets,
            subject_kind=kind,
            masked_name=found[0].case.masked_name if found else None,
            blocked_elsewhere=bool(blocks) and not found,
            cases=[_checked(b) for b in found],
            checked_at=self.clock(),
        )
        if vouch is None or vouch.age_seconds > self.freshness_bound:
            raise ListsAreStale(self._stale(answer, vouch))
        return answer

    def _stale(self, last_known: CheckAnswer, vouch: Vouched | None) -> StaleAnswer:
        reason = (
            "the blocklist builder has never vouched for its tables"
            if vouch is None
            else f"the blocklist builder last vouched {vouch.age_seconds:.1f} s ago, "
            f"bound {self.freshness_bound} s"
        )
        return StaleAnswer(
            measure=last_known.measure,
            watermark=None if vouch is None else vouch.as_of,
            age_seconds=None if vouch is None else round(vouch.age_seconds, 3),
            bound_seconds=self.freshness_bound,
            reason=reason,
            last_known=last_known,
            checked_at=last_known.checked_at,
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
