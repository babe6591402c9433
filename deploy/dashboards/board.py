"""A dashboard's frame: panels laid out in rows of 24 columns and numbered, the house
settings (refresh, time range, shared crosshair), the links between the dashboards, and
the encoding to the JSON Grafana provisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from deploy.dashboards.panels import AnyPanel

Json = dict[str, Any]

OVERVIEW_UID = "redline-overview"
SUBSCRIBERS_UID = "redline-subscribers"
DEPARTMENT_TAG = "redline-department"


def department_uid(code: str) -> str:
    return f"redline-dept-{code}"


@dataclass
class Board:
    """Panels in the order they are read; the SDK lays them out left to right, starting a
    new line when a line is full (every line of ours fills the 24 columns exactly)."""

    panels: list[AnyPanel | builders.Row] = field(default_factory=list)

    def row(self, title: str) -> None:
        self.panels.append(builders.Row(title).id(len(self.panels) + 1))

    def add(self, panel: AnyPanel, width: int, height: int) -> None:
        self.panels.append(panel.span(width).height(height).id(len(self.panels) + 1))


@dataclass(frozen=True)
class Frame:
    """What identifies a dashboard and where it links to."""

    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    links: list[Builder[model.DashboardLink]]


def dashboard(
    frame: Frame, board: Board, variables: tuple[builders.QueryVariable, ...] = ()
) -> Json:
    """The dashboard as Grafana provisions it, read-only (it is generated)."""
    built = (
        builders.Dashboard(frame.title)
        .uid(frame.uid)
        .description(frame.description)
        .tags(["redline", *frame.tags])
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .timezone("browser")
        .refresh("30s")
        .time("now-6h", "now")
        .version(1)
        .annotations([])
        .variables(list(variables))
        .links(frame.links)
    )
    for panel in board.panels:
        if isinstance(panel, builders.Row):
            built = built.with_row(panel)
        else:
            built = built.with_panel(panel)
    encoded: Json = json.loads(json.dumps(built.build(), cls=JSONEncoder))
    return encoded


def _link(title: str, uid: str) -> builders.DashboardLink:
    return (
        builders.DashboardLink(title)
        .type(model.DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .keep_time(True)
        .include_vars(False)
        .target_blank(False)
    )


def links(
    *, departments: bool = True, overview: bool = True, subscribers: bool = True
) -> list[Builder[model.DashboardLink]]:
    """The navigation bar: the overview, a drop-down of the departments, the subscribers."""
    found: list[Builder[model.DashboardLink]] = []
    if overview:
        found.append(_link("Overview", OVERVIEW_UID))
    if departments:
        found.append(
            builders.DashboardLink("Departments")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([DEPARTMENT_TAG])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
            .target_blank(False)
        )
    if subscribers:
        found.append(_link("Subscribers", SUBSCRIBERS_UID))
    return found
