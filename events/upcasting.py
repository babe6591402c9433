"""Upcasters turn an old event version into the current one, so consumers see one shape.

Old events stay in the log forever (the violations topic is never deleted) and replays
must still work; each upcaster moves one version forward and they are chained.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from events.catalogue import Stage, Target, load_catalogue
from events.decisions import UNRECORDED_FACTS, decide
from events.errors import EventError, UnknownEventType
from events.land import LandClass
from events.models import PAYLOAD_TYPES, MeasureDecision, Parcel

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _case_filed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 had one land class per case; v2 lists parcels."""
    result = {k: v for k, v in data.items() if k not in ("land_class", "area_mu")}
    result["parcels"] = [{"land_class": data["land_class"], "area_mu": data["area_mu"]}]
    return result


def _case_filed_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """v2 recorded no facts: the case gets UNRECORDED_FACTS, and starts what those and its
    land decide (only measures that need no more than cultivated land)."""
    parcels = [Parcel.model_validate(parcel) for parcel in data["parcels"]]
    starts = decide(load_catalogue(), [Stage.filing], parcels, UNRECORDED_FACTS)
    return {
        **data,
        "facts": UNRECORDED_FACTS.model_dump(mode="json"),
        "starts": [decision.model_dump(mode="json") for decision in starts],
    }


def _case_corrected_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 corrected the parcels only and changed no measure."""
    return {**data, "facts": None, "starts": [], "ends": []}


def _stage_started(stage: Stage, land: frozenset[LandClass]) -> list[dict[str, Any]]:
    """What v1 of a stage's event started: every measure of the stage the land allows."""
    catalogue = load_catalogue()
    found = []
    for measure in catalogue.measures().values():
        if measure.starts_at is stage and measure.when.land & land:
            decision = MeasureDecision(
                measure=measure.code,
                target=measure.targets,
                land=tuple(sorted(measure.when.land & land)),
                rule=f"upcast from {stage} v1, which started every {stage} measure",
            )
            found.append(decision.model_dump(mode="json"))
    return found


def _penalty_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 started every penalty-stage measure; the event names no land, so it is taken
    as the cultivated land every case of that version was about."""
    return {**data, "starts": _stage_started(Stage.penalty, frozenset({LandClass.cultivated}))}


def _accountability_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """The threshold's areas say which farmland was occupied."""
    land = set()
    if Decimal(data["basic_farmland_mu"]) > 0:
        land.add(LandClass.permanent_basic_farmland)
    if Decimal(data["cultivated_mu"]) > 0:
        land.add(LandClass.cultivated)
    return {**data, "starts": _stage_started(Stage.accountability, frozenset(land))}


def _blocklist_entry_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 named no target and no site: the target is the measure's in the catalogue, and
    a site-targeted entry with no site blocks at no site ("blocked at another site")
    until the builder publishes it again, rather than at every address of the subject."""
    measure = load_catalogue().measures().get(str(data.get("measure")))
    target = measure.targets if measure is not None else Target.subject
    return {**data, "target": target.value}


def _blocklist_entry_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """v2 had no list version: 0, older than any record a versioned builder publishes."""
    return {**data, "version": 0}


def _blocklist_heartbeat_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 had no list head: a heartbeat without one vouches for nothing (fail closed)."""
    return {**data, "entries": None, "digest": None}


def _unchanged(data: dict[str, Any]) -> dict[str, Any]:
    """The new version only widens what the old one could say."""
    return data


def next_version(event_type: str) -> str:
    """The type one version on: `redline.case.filed.v1` -> `redline.case.filed.v2`."""
    name, _, version = event_type.rpartition(".v")
    return f"{name}.v{int(version) + 1}"


# The upcaster of each old type, which moves it one version forward.
_STEPS: dict[str, Upcaster] = {
    "redline.case.filed.v1": _case_filed_v1_to_v2,
    "redline.case.filed.v2": _case_filed_v2_to_v3,
    "redline.case.corrected.v1": _case_corrected_v1_to_v2,
    "redline.case.penalty_decided.v1": _penalty_v1_to_v2,
    "redline.accountability.triggered.v1": _accountability_v1_to_v2,
    "redline.measure.lifted.v1": _unchanged,
    "redline.blocklist.entry.v1": _blocklist_entry_v1_to_v2,
    "redline.blocklist.entry.v2": _blocklist_entry_v2_to_v3,
    "redline.blocklist.heartbeat.v1": _blocklist_heartbeat_v1_to_v2,
}
UPCASTERS: dict[str, tuple[str, Upcaster]] = {
    old: (next_version(old), step) for old, step in _STEPS.items()
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
