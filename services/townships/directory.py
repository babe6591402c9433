"""The bodies that own cases (乡镇/街道 and the development zone), from the city's
configuration file `townships.yaml`: current ones by code, abolished ones as aliases that
old cases may still carry. Configuration, read once at start-up; no I/O elsewhere."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.errors import ConfigError, InvalidInput

TOWNSHIPS_FILE = Path(__file__).with_name("townships.yaml")

XIAOYI_DIVISION = "141181"
_TOWNSHIP_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DIVISION_CODE = re.compile(rf"^{XIAOYI_DIVISION}\d{{3}}$")
TOWNSHIP_KINDS = ("township", "development_zone")


@dataclass(frozen=True)
class Township:
    """A body that owns cases: a township, town or sub-district with its 9-digit division
    code, or the economic development zone (no division code: it is not a division)."""

    code: str
    name: str
    division: str | None = None
    kind: str = "township"


@dataclass(frozen=True)
class TownshipAlias:
    """An abolished or renamed unit: read on old cases, refused on new ones."""

    code: str
    name: str
    division: str | None
    successor: str | None  # the current code its old cases count under, when recorded


def check_current(
    code: str, townships: Mapping[str, Township], aliases: Mapping[str, TownshipAlias]
) -> None:
    """Only a current township may be named on anything new: an abolished or renamed one is
    refused with its successor named, an unknown one with the current ones listed."""
    if code in townships:
        return
    if code in aliases:
        alias = aliases[code]
        instead = f"; its successor is {alias.successor}" if alias.successor else ""
        raise InvalidInput(
            "township",
            f"{code} ({alias.name}) was abolished: old cases keep it, new ones may not{instead}",
        )
    raise InvalidInput("township", f"unknown township {code!r}; known: {', '.join(townships)}")


def load_townships(path: Path = TOWNSHIPS_FILE) -> dict[str, Township]:
    """The current bodies only: a case may be filed under these and no other."""
    return _read_townships(path)[0]


def load_township_aliases(path: Path = TOWNSHIPS_FILE) -> dict[str, TownshipAlias]:
    return _read_townships(path)[1]


def township_names(path: Path = TOWNSHIPS_FILE) -> dict[str, str]:
    """Every code a stored case may carry, with its name: current ones, then aliases."""
    current, aliases = _read_townships(path)
    return {code: t.name for code, t in current.items()} | {
        code: f"{a.name}（已撤销）" for code, a in aliases.items()
    }


def _read_townships(path: Path) -> tuple[dict[str, Township], dict[str, TownshipAlias]]:
    """Both lists, refused with the entry and the field named when one is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        current = [_township(entry) for entry in document["townships"]]
        aliases = [_alias(entry) for entry in document.get("aliases") or []]
    except (OSError, KeyError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not a townships file: {exc!r}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    codes = [t.code for t in current] + [a.code for a in aliases]
    divisions = [d for d in [*(t.division for t in current), *(a.division for a in aliases)] if d]
    for what, values in (("code", codes), ("division", divisions)):
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ConfigError(f"{path}: {what}: {', '.join(repeated)} used more than once")
    by_code = {t.code: t for t in current}
    for alias in aliases:
        if alias.successor is not None and alias.successor not in by_code:
            raise ConfigError(
                f"{path}: alias {alias.code}: successor: {alias.successor!r} is not a current "
                "township"
            )
    return by_code, {a.code: a for a in aliases}


def _township(entry: dict[str, Any]) -> Township:
    code, name = _code_and_name(entry)
    kind = entry.get("kind", "township")
    if kind not in TOWNSHIP_KINDS:
        raise ValueError(f"township {code}: kind: {kind!r} is not one of {TOWNSHIP_KINDS}")
    division = _division(code, entry.get("division"))
    if division is None and kind == "township":
        raise ValueError(f"township {code}: division: required (9 digits under 141181)")
    return Township(code, name, division, kind)


def _alias(entry: dict[str, Any]) -> TownshipAlias:
    code, name = _code_and_name(entry)
    successor = entry["successor"]
    if successor is not None and not isinstance(successor, str):
        raise ValueError(f"alias {code}: successor: must be a township code or null")
    return TownshipAlias(code, name, _division(code, entry.get("division")), successor)


def _code_and_name(entry: dict[str, Any]) -> tuple[str, str]:
    code, name = entry["code"], entry["name"]
    if not isinstance(code, str) or not _TOWNSHIP_CODE.match(code):
        raise ValueError(f"code: {code!r} is not a lower-case code such as xinyi")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"township {code}: name: must be a non-empty text")
    return code, name


def _division(code: str, division: object) -> str | None:
    if division is None:
        return None
    if not isinstance(division, str) or not _DIVISION_CODE.match(division):
        raise ValueError(
            f"township {code}: division: {division!r} is not a 9-digit code under "
            f"{XIAOYI_DIVISION} (quote it in YAML)"
        )
    return division
