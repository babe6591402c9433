"""Who may call what on the HTTP API: bearer tokens per role, and one explicit table.

Tokens are kept only as SHA-256 hashes (a leaked token file opens nothing). Roles: case
officers file and change cases; agriculture inspectors (农业农村局) co-sign restorations;
a department reads its own blocks; subscribers (and departments) check subjects; operators
read everything. Anything the table does not allow is refused.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from services.errors import ConfigError


class Role(StrEnum):
    case_officer = "case_officer"
    agriculture_inspector = "agriculture_inspector"
    department = "department"
    subscriber = "subscriber"
    operator = "operator"


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    department: str | None = None


@dataclass(frozen=True)
class Rule:
    method: str
    path: re.Pattern[str]
    roles: frozenset[Role] | None  # None: open to anyone (health, metrics, the API's docs)
    own_department: bool = False  # a department only where the path names it


def _rule(method: str, path: str, *roles: Role, own_department: bool = False) -> Rule:
    return Rule(method, re.compile(path), frozenset(roles) if roles else None, own_department)


OFFICERS, OPERATORS, INSPECTORS = Role.case_officer, Role.operator, Role.agriculture_inspector
POLICY: tuple[Rule, ...] = (
    _rule("GET", r"^/(healthz|metrics|openapi\.json|docs|redoc)$"),
    # The documents' scripts and styles (events/apidocs.py): a browser sends no token.
    _rule("GET", r"^/docs/assets/[a-z0-9.-]+$"),
    _rule("POST", r"^/v1/(clues|cases)$", OFFICERS),
    _rule("POST", r"^/v1/cases/[^/]+/[a-z][a-z_-]*$", OFFICERS),
    # Restoration is signed by both bodies; the role decides which one signs.
    _rule("POST", r"^/v1/cases/[^/]+/restoration/sign-offs$", OFFICERS, INSPECTORS),
    _rule("GET", r"^/v1/(cases|clues)(/[^/]+)?$", OFFICERS, OPERATORS, INSPECTORS),
    _rule(
        "GET",
        r"^/v1/departments/(?P<department>[^/]+)/blocks$",
        Role.department,
        OPERATORS,
        own_department=True,
    ),
    _rule("GET", r"^/v1/checks$", Role.subscriber, Role.department, OPERATORS, OFFICERS),
    _rule("GET", r"^/v1/reports/[a-z]+$", OPERATORS, OFFICERS),
)


def decide(principal: Principal | None, method: str, path: str) -> str | None:
    """None when allowed, else why not (the caller answers 401 or 403)."""
    for rule in POLICY:
        match = rule.path.match(path)
        if rule.method != method or match is None:
            continue
        if rule.roles is None:
            return None
        if principal is None:
            return "a bearer token is required"
        if principal.role not in rule.roles:
            allowed = ", ".join(sorted(rule.roles))
            return f"{method} {path} is for {allowed}, not {principal.role}"
        named = match.groupdict().get("department")
        if (
            rule.own_department
            and principal.role is Role.department
            and named != principal.department
        ):
            return f"department {principal.department} may read only its own blocks"
        return None
    return "a bearer token is required" if principal is None else f"{method} {path} is not allowed"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, principals: dict[str, Principal]) -> None:
        self._by_hash = principals

    def principal(self, token: str) -> Principal | None:
        return self._by_hash.get(token_hash(token))

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        try:
            document = yaml.safe_load(path.read_text())
            principals = {
                entry["sha256"]: Principal(
                    entry["name"], Role(entry["role"]), entry.get("department")
                )
                for entry in document["tokens"]
            }
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"REDLINE_API_TOKENS: cannot read tokens from {path}: {exc}") from exc
        return cls(principals)


def ensure_dev_tokens(home: Path, departments: list[str]) -> Path:
    """Development tokens for `make run` and the tests: the raw tokens under
    home/tokens/<name>.token, their hashes in home/tokens.yaml."""
    wanted = [
        Principal("case-officer", Role.case_officer),
        Principal("agriculture-inspector", Role.agriculture_inspector),
        Principal("operator", Role.operator),
        Principal("subscriber", Role.subscriber),
        *(Principal(f"department-{code}", Role.department, code) for code in departments),
    ]
    directory = home / "tokens"
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for principal in wanted:
        raw_path = directory / f"{principal.name}.token"
        if not raw_path.exists():
            raw_path.touch(mode=0o600)
            raw_path.write_text(secrets.token_urlsafe(32) + "\n")
        entry = {
            "name": principal.name,
            "role": principal.role.value,
            "sha256": token_hash(raw_path.read_text().strip()),
        }
        if principal.department:
            entry["department"] = principal.department
        entries.append(entry)
    path = home / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": entries}, sort_keys=False))
    return path


def dev_token(home: Path, name: str) -> str:
    return (home / "tokens" / f"{name}.token").read_text().strip()
