"""Pure: what a violation event requires of every department, and by when.

The same rules table the enforcers run (services.departments.domain) decides it, so the
tracker and the departments cannot disagree about what is owed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from events.catalogue import Catalogue
from events.models import Payload
from services.departments.domain import Apply, effects

Action = Literal["apply", "lift"]


@dataclass(frozen=True)
class Requirement:
    case_id: str
    department: str
    measure: str
    action: Action
    required_at: datetime
    due_at: datetime
    required_by: str


def requirements(
    catalogue: Catalogue, payload: Payload, at: datetime, event_id: str
) -> list[Requirement]:
    case_id = getattr(payload, "case_id", None)
    if not isinstance(case_id, str):
        return []
    owed = []
    for department in catalogue.departments:
        for effect in effects(department, payload):
            deadline = timedelta(hours=effect.measure.response_deadline_hours)
            owed.append(
                Requirement(
                    case_id=case_id,
                    department=department.code,
                    measure=effect.measure.code,
                    action="apply" if isinstance(effect, Apply) else "lift",
                    required_at=at,
                    due_at=at + deadline,
                    required_by=event_id,
                )
            )
    return owed
