"""Who may issue which events: the issuing authorities and their CloudEvents sources."""

from __future__ import annotations

from dataclasses import dataclass

from services.departments.catalogue import load_catalogue


@dataclass(frozen=True)
class Authority:
    code: str
    may_issue: tuple[str, ...]

    @property
    def source(self) -> str:
        return f"/authorities/{self.code}"


NATURAL_RESOURCES = Authority(
    "natural_resources",
    ("redline.clue.*", "redline.case.*", "redline.accountability.*"),
)

DEPARTMENT_MAY_ISSUE = ("redline.measure.*", "redline.deadletter.*")

FEEDBACK_TRACKER = Authority("feedback_tracker", ("redline.response.*", "redline.deadletter.*"))


def department_authority(code: str) -> Authority:
    """A department signs its acknowledgements and its dead letters, nothing else."""
    return Authority(code, DEPARTMENT_MAY_ISSUE)


def all_authorities() -> tuple[Authority, ...]:
    """Every issuer the development trust store knows: the bureau, each department, the tracker."""
    departments = tuple(department_authority(code) for code in load_catalogue().codes)
    return (NATURAL_RESOURCES, *departments, FEEDBACK_TRACKER)
