"""Who may issue which events: the issuing authorities and their CloudEvents sources."""

from __future__ import annotations

from dataclasses import dataclass

from events.catalogue import load_catalogue


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

BLOCKLIST_BUILDER = Authority("blocklist_builder", ("redline.blocklist.*", "redline.deadletter.*"))

# A subscriber (a utility or bank) answers that it applied a block, and dead-letters what
# it cannot read; it may not file, lift or vouch for anything else.
SUBSCRIBER_MAY_ISSUE = ("redline.measure.applied.*", "redline.deadletter.*")


def department_authority(code: str) -> Authority:
    """A department signs its acknowledgements and its dead letters, nothing else."""
    return Authority(code, DEPARTMENT_MAY_ISSUE)


def subscriber_authority(name: str) -> Authority:
    return Authority(name, SUBSCRIBER_MAY_ISSUE)


def demo_subscriber(department: str) -> Authority:
    """The subscriber `make run` starts for a utility or bank department."""
    return subscriber_authority(f"{department}_demo_subscriber")


def all_authorities() -> tuple[Authority, ...]:
    """Every issuer the development trust store knows: the bureau, each department, the
    tracker, the blocklist builder and a demo subscriber per utility and bank."""
    catalogue = load_catalogue()
    departments = tuple(department_authority(code) for code in catalogue.codes)
    subscribers = tuple(demo_subscriber(d.code) for d in catalogue.subscriber_departments)
    return (NATURAL_RESOURCES, *departments, FEEDBACK_TRACKER, BLOCKLIST_BUILDER, *subscribers)
