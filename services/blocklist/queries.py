"""The central check (GET /v1/checks): for a department or company without a replica."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from events.catalogue import Catalogue
from events.errors import InvalidEvent
from events.privacy import SubjectHasher, parse_subject_id
from services.blocklist.domain import owners
from services.blocklist.ports import BlocklistStore
from services.errors import InvalidInput


class CheckedCase(BaseModel):
    case_id: str
    legal_basis: str
    since: datetime


class CheckAnswer(BaseModel):
    status: Literal["blocked", "clear"]
    measure: str
    subject_kind: Literal["organization", "person"]
    masked_name: str | None
    cases: list[CheckedCase]
    checked_at: datetime


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

    async def check(self, measure: str, subject: str) -> CheckAnswer:
        """Whether `subject` (a raw USCC or resident ID) is blocked under `measure`."""
        if measure not in self.measures:
            known = ", ".join(sorted(self.measures))
            raise InvalidInput("measure", f"unknown measure {measure!r}; known: {known}")
        try:
            kind, normalised = parse_subject_id(subject)
        except InvalidEvent as exc:
            raise InvalidInput(exc.field, exc.reason) from exc
        blocks = await self.store.active(measure, self.hasher.hash_id(normalised))
        return CheckAnswer(
            status="blocked" if blocks else "clear",
            measure=measure,
            subject_kind=kind,
            masked_name=blocks[0].subject.masked_name if blocks else None,
            cases=[
                CheckedCase(case_id=b.case_id, legal_basis=b.legal_basis, since=b.since)
                for b in blocks
            ],
            checked_at=self.clock(),
        )
