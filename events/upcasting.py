"""Upcasters turn an old event version into the current one, so consumers see one shape.

Old events stay in the log forever (the violations topic is never deleted) and replays
must still work; each upcaster moves one version forward and they are chained.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from events.errors import EventError, UnknownEventType
from events.models import PAYLOAD_TYPES

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _case_filed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 had one land class per case; v2 lists parcels."""
    result = {k: v for k, v in data.items() if k not in ("land_class", "area_mu")}
    result["parcels"] = [{"land_class": data["land_class"], "area_mu": data["area_mu"]}]
    return result


UPCASTERS: dict[str, tuple[str, Upcaster]] = {
    "redline.case.filed.v1": ("redline.case.filed.v2", _case_filed_v1_to_v2),
}

CURRENT_TYPES: frozenset[str] = frozenset(PAYLOAD_TYPES) - frozenset(UPCASTERS)


def upcast(
    event_type: str,
    data: dict[str, Any],
    registry: Mapping[str, tuple[str, Upcaster]] = UPCASTERS,
) -> tuple[str, dict[str, Any]]:
    """Apply upcasters until the type has none; the input dict is not modified."""
    if event_type not in PAYLOAD_TYPES and event_type not in registry:
        raise UnknownEventType(event_type)
    seen = {event_type}
    while event_type in registry:
        event_type, step = registry[event_type]
        if event_type in seen:
            raise EventError(f"upcaster cycle through {event_type!r}")
        seen.add(event_type)
        data = step(dict(data))
    return event_type, data
