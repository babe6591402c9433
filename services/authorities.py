"""Who may issue which events: the issuing authorities and their CloudEvents sources."""

from __future__ import annotations

from dataclasses import dataclass


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

AUTHORITIES: tuple[Authority, ...] = (NATURAL_RESOURCES,)
