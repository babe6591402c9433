"""The panel kinds every Redline dashboard uses, built with Grafana's foundation SDK, so a
misspelt option or a wrong enum value is a type error rather than a silently ignored key.
Each builder fixes the house style (colours, legends, reductions) in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, text, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.text import TextMode

from deploy.model import DATASOURCE_UID, STALENESS_BOUND_SECONDS

DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
"""The provisioned Prometheus datasource, as every panel and query names it."""

SOURCE = model.DataSourceRef(type_val=DATASOURCE["type"], uid=DATASOURCE["uid"])
RATE = "$__rate_interval"
RANGE = "$__range"

AnyPanel = stat.Panel | timeseries.Panel | bargauge.Panel | table.Panel | text.Panel
Steps = tuple[tuple[str, float | None], ...]

GREEN: Steps = (("green", None),)
RED_FROM_ONE: Steps = (("green", None), ("red", 1))


@dataclass(frozen=True)
class Query:
    """One PromQL target: a range query by default, instant for 'now' and 'in the range'."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def target(self, ref: str) -> prometheus.Dataquery:
        target = (
            prometheus.Dataquery()
            .datasource(SOURCE)
            .ref_id(ref)
            .expr(self.expr)
            .legend_format(self.legend or "__auto")
        )
        target = target.instant() if self.instant else target.range()
        if self.table:
            target = target.format(PromQueryFormat.TABLE)
        return target


def thresholds(steps: Steps) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(color=color, value=value) for color, value in steps])
    )


def red_from(value: float) -> Steps:
    return (("green", None), ("red", value))


def _last_value() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def _targets(queries: list[Query]) -> list[Builder[variants.Dataquery]]:
    return [q.target(chr(ord("A") + i)) for i, q in enumerate(queries)]


class _DataPanel(Protocol):
    """What every panel builder that shows queries has (the SDK's builders share no base)."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...
    def targets(self, targets: list[Builder[variants.Dataquery]]) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def thresholds(self, thresholds: Builder[model.ThresholdsConfig]) -> Self: ...


_Panel = TypeVar("_Panel", bound=_DataPanel)


def _framed(
    panel: _Panel, title: str, description: str, queries: list[Query], *, unit: str, steps: Steps
) -> _Panel:
    """The house frame of a data panel: its title, description, queries on our datasource,
    unit and thresholds."""
    return (
        panel.title(title)
        .description(description)
        .datasource(SOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .thresholds(thresholds(steps))
    )


def stat_panel(
    title: str, description: str, query: Query, *, unit: str = "short", steps: Steps = GREEN
) -> stat.Panel:
    """One number, coloured by its thresholds; a sparkline unless it is an instant query."""
    graph = common.BigValueGraphMode.NONE if query.instant else common.BigValueGraphMode.AREA
    return (
        _framed(stat.Panel(), title, description, [query], unit=unit, steps=steps)
        .color_scheme(dashboard_builders.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .reduce_options(_last_value())
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(graph)
        .justify_mode(common.BigValueJustifyMode.AUTO)
        .text_mode(common.BigValueTextMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
    )


def timeseries_panel(
    title: str,
    description: str,
    queries: list[Query],
    *,
    unit: str = "short",
    bars: bool = False,
    stacked: bool = False,
    threshold_line: float | None = None,
) -> timeseries.Panel:
    """Lines (or stacked bars) with a table legend; `threshold_line` draws an alert bound."""
    style = common.GraphThresholdsStyleMode.OFF
    steps = GREEN
    if threshold_line is not None:
        style, steps = common.GraphThresholdsStyleMode.LINE_AND_AREA, red_from(threshold_line)
    stacking = common.StackingMode.NORMAL if stacked else common.StackingMode.NONE
    return (
        _framed(timeseries.Panel(), title, description, queries, unit=unit, steps=steps)
        .draw_style(common.GraphDrawStyle.BARS if bars else common.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(60 if bars else 10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(common_builders.StackingConfig().mode(stacking).group("A"))
        .thresholds_style(common_builders.GraphThresholdsStyleConfig().mode(style))
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
    )


def bargauge_panel(
    title: str, description: str, query: Query, *, steps: Steps = GREEN
) -> bargauge.Panel:
    """Horizontal bars, one per series, for 'now' and 'in the range' breakdowns."""
    return (
        _framed(bargauge.Panel(), title, description, [query], unit="short", steps=steps)
        .color_scheme(dashboard_builders.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .reduce_options(_last_value())
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .show_unfilled(True)
        .value_mode(common.BarGaugeValueMode.COLOR)
        .name_placement(common.BarGaugeNamePlacement.AUTO)
        .sizing(common.BarGaugeSizing.AUTO)
        .min_viz_height(16)
        .min_viz_width(8)
        .max_viz_height(300)
    )


def table_panel(title: str, description: str, key: str, columns: dict[str, str]) -> table.Panel:
    """Instant queries merged into one row per `key` label, a column per query, named by
    the keys of `columns` in order."""
    names = {f"Value #{chr(ord('A') + i)}": name for i, name in enumerate(columns)}
    organize = {"excludeByName": {"Time": True}, "indexByName": {key: 0}, "renameByName": names}
    queries = [Query(expr, instant=True, table=True) for expr in columns.values()]
    return (
        _framed(table.Panel(), title, description, queries, unit="short", steps=GREEN)
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .footer(common_builders.TableFooterOptions().show(False))
        .transformations(
            [
                model.DataTransformerConfig(id_val="merge", options={}),
                model.DataTransformerConfig(id_val="organize", options=organize),
            ]
        )
    )


def text_panel(title: str, content: str) -> text.Panel:
    return text.Panel().title(title).mode(TextMode.MARKDOWN).content(content)


def service_health(title: str, selector: str) -> stat.Panel:
    """UP/DOWN per process, from Prometheus' own `up`."""
    mapping = model.ValueMap(
        options={
            "0": model.ValueMappingResult(text="DOWN", color="red", index=0),
            "1": model.ValueMappingResult(text="UP", color="green", index=1),
        }
    )
    return (
        stat_panel(
            title,
            "1 while Prometheus can scrape the process, 0 when it cannot "
            "(alert RedlineServiceDown).",
            Query(f"up{{{selector}}}", "{{service}}"),
            steps=(("red", None), ("green", 1)),
        )
        .graph_mode(common.BigValueGraphMode.NONE)
        .justify_mode(common.BigValueJustifyMode.CENTER)
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .mappings([mapping])
    )


def staleness_panel(title: str, description: str, selector: str) -> timeseries.Panel:
    """Each subscriber replica's age against the connector's freshness bound."""
    return timeseries_panel(
        title,
        f"{description}; the line is the freshness bound (alert RedlineSubscriberReplicaStale).",
        [
            Query(
                "max by (subscriber, measure) "
                f"(redline_subscriber_staleness_seconds{{{selector}}})",
                "{{subscriber}} · {{measure}}",
            )
        ],
        unit="s",
        threshold_line=STALENESS_BOUND_SECONDS,
    )


def alternatives(values: list[str] | tuple[str, ...]) -> str:
    """A PromQL regex matching any of `values`."""
    return "|".join(values)
