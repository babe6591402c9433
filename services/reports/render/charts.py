"""Inline SVG charts: drawn into the page, so a report needs nothing fetched to show them."""

from __future__ import annotations

from collections.abc import Sequence

from services.reports.render.page import escaped

Bar = tuple[str, Sequence[float]]
_LABEL_WIDTH, _CHART_WIDTH, _BAR_HEIGHT, _GAP, _TOP = 150, 520, 18, 8, 34


def _number(value: float) -> str:
    """Up to three decimals (areas are surveyed to the thousandth of a mu), no trailing 0s."""
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def stacked_bars(
    title: str,
    bars: Sequence[Bar],
    series: Sequence[tuple[str, str]],
    unit: str,
    highlight: frozenset[str] = frozenset(),
) -> str:
    """A horizontal stacked bar chart: one bar per label, one segment per series; labels in
    `highlight` are drawn in red."""
    legend_y = _TOP + len(bars) * (_BAR_HEIGHT + _GAP) + 6
    height = legend_y + 26
    largest = max((sum(values) for _, values in bars), default=0.0) or 1.0
    width = _LABEL_WIDTH + _CHART_WIDTH + 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}">',
        f"<title>{escaped(title)}</title>",
        f'<text x="0" y="18" class="chart-title">{escaped(title)}</text>',
    ]
    for index, (label, values) in enumerate(bars):
        y = _TOP + index * (_BAR_HEIGHT + _GAP)
        parts.append(
            _bar(
                label,
                values,
                y=y,
                series=series,
                unit=unit,
                largest=largest,
                highlighted=label in highlight,
            )
        )
    parts.extend(_legend(series, legend_y) if len(series) > 1 else ())
    parts.append("</svg>")
    return "".join(parts)


def _bar(
    label: str,
    values: Sequence[float],
    *,
    y: int,
    series: Sequence[tuple[str, str]],
    unit: str,
    largest: float,
    highlighted: bool,
) -> str:
    colour = ' fill="#b5524a"' if highlighted else ""
    parts = [
        f'<text x="{_LABEL_WIDTH - 6}" y="{y + _BAR_HEIGHT - 4}" text-anchor="end"{colour}>'
        f"{escaped(label)}</text>"
    ]
    x = float(_LABEL_WIDTH)
    for (name, fill), value in zip(series, values, strict=True):
        segment = _CHART_WIDTH * value / largest
        if segment > 0:
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{segment:.1f}" height="{_BAR_HEIGHT}" '
                f'fill="{escaped(fill)}"><title>{escaped(label)} {escaped(name)}: '
                f"{escaped(_number(value))} {escaped(unit)}</title></rect>"
            )
        x += segment
    parts.append(
        f'<text x="{x + 4:.1f}" y="{y + _BAR_HEIGHT - 4}">'
        f"{escaped(_number(sum(values)))} {escaped(unit)}</text>"
    )
    return "".join(parts)


def _legend(series: Sequence[tuple[str, str]], y: int) -> list[str]:
    parts = []
    x = float(_LABEL_WIDTH)
    for name, fill in series:
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="12" height="12" fill="{escaped(fill)}"/>'
            f'<text x="{x + 16:.1f}" y="{y + 11}">{escaped(name)}</text>'
        )
        x += 24 + 13 * len(name)
    return parts
