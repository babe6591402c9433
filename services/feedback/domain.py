"""Pure: what a violation event requires of every department, and by when.

The registry decided each case's measures and wrote the decisions into its events; the
same rules table the enforcers run (services.departments.domain) reads them, so the
tracker and the departments cannot disagree about what is owed:
- a measure an event `starts`: every department owning it owes an apply;
- a measure a correction `ends`: each owner owes a lift;
- an end condition (restoration, revocation, land procedures, confiscation): a lift is
  owed only where the apply was owed and not lifted since. Only the store knows that, so
  these requirements are candidates it keeps or drops (FeedbackTransaction.record).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from events.authorities import demo_subscriber, department_authority, subscriber_authority
from events.catalogue import Catalogue
from events.models import Payload
from services.departments.domain import Apply, effects

Action = Literal["apply", "lift"]


@dataclass(frozen=True)
class Requirement:
    """One department owes one answer on a case. A lift is kept only where the same
    department was owed the apply of that measure and has not been asked to lift it since."""

    case_id: str
    department: str
    measure: str
    action: Action
    required_at: datetime
    due_at: datetime
    required_by: str

    @property
    def key(self) -> tuple[str, str, str, Action]:
        return (self.case_id, self.department, self.measure, self.action)


def requirements(
    catalogue: Catalogue, payload: Payload, at: datetime, event_id: str
) -> list[Requirement]:
    """Lifts before applies, as the departments act: a measure that a correction moves
    to another site ends there before it starts at the new one."""
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
    return sorted(owed, key=lambda r: r.action != "lift")  # stable: lifts first


def in_order(required: Iterable[Requirement]) -> list[Sequence[Requirement]]:
    """Requirements in waves the store can write a wave at a time, keeping each case's
    order: a case's requirement moves to a later wave whenever its action changes (an
    apply after a lift is a new cycle; a lift after an apply may lift it). A key that
    repeats within a wave keeps its first requirement (say, a correction's lift and a
    restoration's in one batch): the later one would find it already owed."""
    waves: list[dict[tuple[str, str, str, Action], Requirement]] = []
    position: dict[str, tuple[int, Action]] = {}  # case -> (wave, its action there)
    for requirement in required:
        wave, action = position.get(requirement.case_id, (0, requirement.action))
        if action != requirement.action:
            wave += 1
        position[requirement.case_id] = (wave, requirement.action)
        while len(waves) <= wave:
            waves.append({})
        waves[wave].setdefault(requirement.key, requirement)
    return [list(wave.values()) for wave in waves]


NOT_OWNED = "acknowledgement_not_owned"


@dataclass(frozen=True)
class Answerers:
    """Who may answer for a department's measures: the department's own authority, and a
    subscriber (a utility's or bank's connector) for the department it subscribes for.

    The trust store proves which authority signed an acknowledgement (its source); this
    says whether that authority may answer for `department` and `measure`, so a valid key
    of one department cannot mark another department's measure done or failed.
    """

    measures: Mapping[str, frozenset[str]]  # department code -> the measures it owns
    departments_of: Mapping[str, str]  # authority source -> the department it answers for

    @classmethod
    def of(cls, catalogue: Catalogue, subscribers: Mapping[str, str] | None = None) -> Answerers:
        """Each department answers for itself; each utility's and bank's subscriber
        (`demo_subscriber(department)`, and any named in `subscribers`: authority code ->
        department code) for the department it subscribes for."""
        measures = {d.code: frozenset(m.code for m in d.measures) for d in catalogue.departments}
        departments_of = {department_authority(code).source: code for code in measures}
        for department in catalogue.subscriber_departments:
            departments_of[demo_subscriber(department.code).source] = department.code
        for name, department_code in (subscribers or {}).items():
            if department_code not in {d.code for d in catalogue.subscriber_departments}:
                raise ValueError(
                    f"subscriber {name!r}: {department_code!r} is not a utility or bank "
                    "department, so it has no blocklist to subscribe to"
                )
            departments_of[subscriber_authority(name).source] = department_code
        return cls(measures, departments_of)

    def refusal(self, source: str, department: str, measure: str) -> str | None:
        """Why the authority at `source` may not answer for `department`'s `measure`, or
        None when it may."""
        answers_for = self.departments_of.get(source)
        if answers_for is None:
            return f"{source} answers for no department's measures"
        if answers_for != department:
            return f"{source} answers for {answers_for}, not for {department}"
        if measure not in self.measures.get(department, frozenset()):
            return f"{measure} is not a measure of {department}"
        return None
