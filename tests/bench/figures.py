"""One row of a benchmark's results, as `make bench` prints and compares them."""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]


def figure(name: str, value: float, unit: str, against: Row | None = None, **more: Any) -> Row:
    """A measured figure; `against`, the row it is compared with (its baseline), adds that
    row's name and the ratio of this value to its value."""
    row: Row = {"figure": name, "value": value, "unit": unit}
    if against is not None:
        row |= {"baseline": against["figure"], "ratio": value / against["value"]}
    return row | more
