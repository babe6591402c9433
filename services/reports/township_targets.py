"""What the quarterly township report carries from the townships context: the targets each
township entered (§四(一)) and its warning talks with their rectification deadlines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from events.models import DecimalStr
from services.reports.common import ReportModel
from services.reports.periods import Window
from services.townships.domain import (
    TARGET_LABELS,
    QuarterFigures,
    Rectification,
    Talk,
    TalkStatus,
    rectification,
)


@dataclass(frozen=True)
class TargetRow:
    """A township's entered responsibility targets for the quarter (services.townships)."""

    township: str
    status: str
    figures: Mapping[str, Any]


@dataclass(frozen=True)
class TalkRow:
    """A warning talk with a township, as it stands (services.townships)."""

    talk_id: str
    township: str
    status: str
    reason: str
    requested_at: datetime
    talk_on: date | None
    rectify_by: date | None
    rectified_on: date | None


class TargetFigure(ReportModel):
    item: str
    label: str
    target: DecimalStr
    achieved: DecimalStr
    met: bool


class TownshipTargets(ReportModel):
    """What the township entered for the quarter (§四(一)); `unmet` names each shortfall.
    The check against the bus's figures is GET /v1/townships/{code}/reports/{quarter}."""

    township: str
    township_name: str
    status: str
    targets: list[TargetFigure]
    unmet: list[str]


class TownshipTalk(ReportModel):
    """A warning talk (警示约谈) and its rectification deadline (限时整改) as of `as_of`."""

    talk_id: str
    township: str
    township_name: str
    status: str
    reason: str
    talk_on: date | None
    rectify_by: date | None
    rectified_on: date | None
    rectification: str


def township_targets(row: TargetRow, names: Mapping[str, str]) -> TownshipTargets:
    figures = QuarterFigures.model_validate(row.figures)
    items = [
        TargetFigure(
            item=item,
            label=TARGET_LABELS[item],
            target=target.target,
            achieved=target.achieved,
            met=target.met,
        )
        for item, target in figures.targets.items()
    ]
    return TownshipTargets(
        township=row.township,
        township_name=names.get(row.township, row.township),
        status=row.status,
        targets=items,
        unmet=[f"{t.label}: {t.achieved} < {t.target} 亩" for t in items if not t.met],
    )


def talk_in_window(row: TalkRow, window: Window) -> bool:
    """A talk belongs to the quarter it was requested in, and to every quarter its
    rectification is pending or falls due in."""
    if window.holds(row.requested_at):
        return True
    if row.requested_at >= window.end or row.rectify_by is None:
        return False
    return row.rectified_on is None or row.rectified_on >= window.first_day


def township_talk(row: TalkRow, as_of: date, names: Mapping[str, str]) -> TownshipTalk:
    """The talk as it stood on `as_of`: a rectification recorded later is not yet done."""
    talk = Talk(
        talk_id=row.talk_id,
        township=row.township,
        reason=row.reason,
        cases=(),
        requested_by="",
        requested_at=row.requested_at,
        status=TalkStatus(row.status),
        talk_on=row.talk_on,
        rectify_by=row.rectify_by,
        rectified_on=row.rectified_on if row.rectified_on and row.rectified_on <= as_of else None,
    )
    state = rectification(talk, as_of)
    return TownshipTalk(
        talk_id=row.talk_id,
        township=row.township,
        township_name=names.get(row.township, row.township),
        status=row.status,
        reason=row.reason,
        talk_on=row.talk_on,
        rectify_by=row.rectify_by,
        rectified_on=talk.rectified_on,
        rectification=state.value if isinstance(state, Rectification) else str(state),
    )
