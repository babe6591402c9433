"""Who may call what on the HTTP API: bearer tokens per role, and one explicit table.

Tokens are kept only as SHA-256 hashes (a leaked token file opens nothing). Roles: case
officers file and change cases; agriculture inspectors (农业农村局) co-sign restorations;
a department reads its own blocks; subscribers (and departments) check subjects; operators
read everything. Anything the table does not allow is refused.

A check is also bound to its measure (least privilege, as a Kafka ACL binds a principal to
its topics): a department checks only the measures the catalogue gives it, a subscriber
only those its token entry grants (none by default), operators and case officers any.
Each principal's checks are rate limited by a token bucket, so a stolen token cannot be
used to sweep the ID space.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from events.catalogue import Catalogue, load_catalogue
from services.errors import ConfigError
from services.principals import Principal as Principal  # noqa: PLC0414 (re-exported)
from services.principals import Role as Role  # noqa: PLC0414 (re-exported)


@dataclass(frozen=True)
class Rule:
    method: str
    path: re.Pattern[str]
    roles: frozenset[Role] | None  # None: open to anyone (health, metrics, the API's docs)
    own_department: bool = False  # a department only where the path names it
    # A department token only for these bodies (e.g. the city government), when given.
    bodies: frozenset[str] | None = None
    # A township, village patrol or field chief only where the path names its township.
    own_township: bool = False


def _rule(
    method: str,
    path: str,
    *roles: Role,
    own_department: bool = False,
    bodies: Iterable[str] | None = None,
    own_township: bool = False,
) -> Rule:
    return Rule(
        method,
        re.compile(path),
        frozenset(roles) if roles else None,
        own_department,
        None if bodies is None else frozenset(bodies),
        own_township,
    )


OFFICERS, OPERATORS, INSPECTORS = Role.case_officer, Role.operator, Role.agriculture_inspector
# Township accountability (seed §四(三)): the city government decides talks and records
# praise, criticism and vetoes; the organisation department reads the assessment.
CITY, ORGANIZATION = "city_government", "organization"
TOWNSHIP_PATH = r"^/v1/townships/(?P<township>[^/]+)"


def _township_read(path: str) -> Rule:
    """A read of one township's own pages: by the township itself, and by the officers,
    operators, city government and organisation department who oversee it."""
    return _rule(
        "GET",
        TOWNSHIP_PATH + path,
        Role.township,
        OFFICERS,
        OPERATORS,
        Role.department,
        bodies=[CITY, ORGANIZATION],
        own_township=True,
    )


POLICY: tuple[Rule, ...] = (
    _rule("GET", r"^/(healthz|metrics|openapi\.json|docs|redoc)$"),
    # The documents' scripts and styles (events/apidocs.py): a browser sends no token.
    _rule("GET", r"^/docs/assets/[a-z0-9.-]+$"),
    _rule("POST", r"^/v1/cases$", OFFICERS),
    # A clue from natural resources, any department or party, a village patrol or a field
    # chief (seed §四(五)); the handler keeps a patrol or chief to its own township.
    _rule("POST", r"^/v1/clues$", OFFICERS, Role.department, Role.village_patrol, Role.field_chief),
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
    # Referrals: the handler checks the token's body against the kind's senders and the
    # referral's receiver (services/referrals/domain.py); subscribers and patrols never.
    _rule("POST", r"^/v1/referrals$", OFFICERS, Role.department),
    _rule("POST", r"^/v1/referrals/[^/]+/(acceptance|refusal|outcome)$", Role.department),
    _rule("GET", r"^/v1/referrals(/[^/]+)?$", OFFICERS, OPERATORS, Role.department),
    # Warning talks: natural resources requests, the city government decides, the township
    # reports its rectification; each township reads only its own.
    _rule("POST", r"^/v1/talks$", OFFICERS),
    _rule("POST", r"^/v1/talks/[^/]+/decision$", Role.department, bodies=[CITY]),
    _rule("GET", r"^/v1/talks$", OFFICERS, OPERATORS, Role.department, bodies=[CITY, ORGANIZATION]),
    _rule("POST", TOWNSHIP_PATH + r"/talks/[^/]+/rectification$", Role.township, own_township=True),
    _township_read(r"/talks$"),
    _rule("POST", TOWNSHIP_PATH + r"/(notices|vetoes)$", Role.department, bodies=[CITY]),
    # The quarterly report: the township enters and submits its own, the city receives it.
    _rule("PUT", TOWNSHIP_PATH + r"/reports/[^/]+$", Role.township, own_township=True),
    _rule("POST", TOWNSHIP_PATH + r"/reports/[^/]+/submission$", Role.township, own_township=True),
    _rule("POST", TOWNSHIP_PATH + r"/reports/[^/]+/receipt$", Role.department, bodies=[CITY]),
    _township_read(r"/reports/[^/]+$"),
    # The organisation department's assessment view (instead of a per-case alert).
    _rule(
        "GET", r"^/v1/assessments/[^/]+$", OPERATORS, Role.department, bodies=[ORGANIZATION, CITY]
    ),
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
        return _out_of_reach(rule, match, principal, f"{method} {path}")
    return "a bearer token is required" if principal is None else f"{method} {path} is not allowed"


def _out_of_reach(rule: Rule, match: re.Match[str], principal: Principal, call: str) -> str | None:
    """Why a principal whose role the rule allows is still refused: a department outside
    the rule's bodies, or one reading another's blocks; a township acting for another."""
    named = match.groupdict()
    if principal.role is Role.department:
        if rule.own_department and named.get("department") != principal.department:
            return f"department {principal.department} may read only its own blocks"
        if rule.bodies is not None and principal.department not in rule.bodies:
            allowed = ", ".join(sorted(rule.bodies))
            return f"{call} is for {allowed}, not department {principal.department}"
    if (
        rule.own_township
        and principal.role in TOWNSHIP_ROLES
        and named.get("township") != principal.township
    ):
        return f"township {principal.township} may act only for its own township"
    return None


CHECK_EVERY_MEASURE = frozenset({Role.operator, Role.case_officer})


class CheckGrants:
    """Which measures each principal may check, from the catalogue and its token entry."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.known = frozenset(catalogue.measures())
        self.of_department = {
            d.code: frozenset(m.code for m in d.measures) for d in catalogue.departments
        }

    def refusal(self, principal: Principal, measure: str) -> str | None:
        """None when `principal` may check `measure`, else why not (answered 403). An
        unknown measure is not refused here: the check itself refuses it as bad input."""
        if principal.role in CHECK_EVERY_MEASURE or measure not in self.known:
            return None
        if principal.role is Role.department:
            own = self.of_department.get(principal.department or "", frozenset())
            if measure in own:
                return None
            return (
                f"measure {measure}: department {principal.department} may check only its own "
                f"measures ({', '.join(sorted(own)) or 'none'})"
            )
        if principal.role is Role.subscriber:
            if measure in principal.measures:
                return None
            granted = ", ".join(sorted(principal.measures)) or "none"
            return (
                f"measure {measure}: subscriber {principal.name} is not granted it "
                f"(granted: {granted})"
            )
        return f"measure {measure}: {principal.role} may check no measure"


class RateLimiter:
    """A token bucket per principal: `rate` requests a second on average, `burst` at once.

    In process and keyed by principal name, so its memory is bounded by the token file.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)

    def take(self, name: str) -> float | None:
        """Spend one token of `name`'s bucket: None when there was one, else the seconds
        until there will be (for Retry-After)."""
        now = self.clock()
        tokens, at = self._buckets.get(name, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[name] = (tokens - 1.0, now)
            return None
        self._buckets[name] = (tokens, now)
        return (1.0 - tokens) / self.rate


def retry_after(wait: float) -> str:
    """A Retry-After value: whole seconds, at least one."""
    return str(max(1, math.ceil(wait)))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, principals: dict[str, Principal]) -> None:
        self._by_hash = principals

    def principal(self, token: str) -> Principal | None:
        return self._by_hash.get(token_hash(token))

    @classmethod
    def load(
        cls,
        path: Path,
        catalogue: Catalogue | None = None,
        townships: Collection[str] | None = None,
    ) -> TokenStore:
        """Entries: name, role, sha256; a department (or party) names its `department`; a
        township official, village patrol or field chief its `township`; a subscriber lists
        the `measures` it may check (none when absent). Codes must be the catalogue's (and,
        when `townships` is given, a township's)."""
        known = catalogue or load_catalogue()
        try:
            document = yaml.safe_load(path.read_text())
            principals = {
                entry["sha256"]: _principal(entry, known, townships) for entry in document["tokens"]
            }
        except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"REDLINE_API_TOKENS: cannot read tokens from {path}: {exc}") from exc
        return cls(principals)


TOWNSHIP_ROLES = frozenset({Role.township, Role.village_patrol, Role.field_chief})


def _principal(
    entry: dict[str, Any], catalogue: Catalogue, townships: Collection[str] | None
) -> Principal:
    """One token entry, refused with the entry and field named when it grants what it cannot."""
    name, role = entry["name"], Role(entry["role"])
    department = entry.get("department")
    township = entry.get("township")
    if (role in TOWNSHIP_ROLES) != (township is not None):
        raise ValueError(
            f"token {name}: township: required for a {', '.join(sorted(TOWNSHIP_ROLES))} "
            f"token and only for those (role {role})"
        )
    if township is not None and townships is not None and township not in townships:
        raise ValueError(f"token {name}: township: {township!r} is not a known township")
    measures = entry.get("measures", [])
    if role is Role.department and department not in catalogue.bodies:
        raise ValueError(
            f"token {name}: department: {department!r} is not a catalogue department or party"
        )
    if measures and role is not Role.subscriber:
        raise ValueError(
            f"token {name}: measures: only a subscriber is granted measures; a {role} checks "
            "what its role gives it"
        )
    if not isinstance(measures, list) or not all(isinstance(m, str) for m in measures):
        raise ValueError(f"token {name}: measures: must be a list of measure codes")
    unknown = sorted(set(measures) - set(catalogue.measures()))
    if unknown:
        raise ValueError(f"token {name}: measures: unknown measure(s) {', '.join(unknown)}")
    return Principal(name, role, department, township, frozenset(measures))


DEV_TOWNSHIPS = ("xinyi", "duizhen")


def ensure_dev_tokens(
    home: Path, departments: list[str], subscriber_measures: Iterable[str] | None = None
) -> Path:
    """Development tokens for `make run` and the tests: the raw tokens under
    home/tokens/<name>.token, their hashes in home/tokens.yaml. The demo subscriber is
    granted the utilities' and banks' measures (the catalogue's blocklists) unless told."""
    if subscriber_measures is None:
        subscriber_measures = load_catalogue().blocklist_measures()
    wanted = [
        Principal("case-officer", Role.case_officer),
        Principal("agriculture-inspector", Role.agriculture_inspector),
        Principal("operator", Role.operator),
        Principal("subscriber", Role.subscriber, measures=frozenset(subscriber_measures)),
        *(Principal(f"department-{code}", Role.department, code) for code in departments),
        # Two townships' officials, so that one township can be shown refused another's.
        *(Principal(f"township-{code}", Role.township, township=code) for code in DEV_TOWNSHIPS),
    ]
    directory = home / "tokens"
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for principal in wanted:
        raw_path = directory / f"{principal.name}.token"
        if not raw_path.exists():
            raw_path.touch(mode=0o600)
            raw_path.write_text(secrets.token_urlsafe(32) + "\n")
        entry: dict[str, Any] = {
            "name": principal.name,
            "role": principal.role.value,
            "sha256": token_hash(raw_path.read_text().strip()),
        }
        if principal.department:
            entry["department"] = principal.department
        if principal.township:
            entry["township"] = principal.township
        if principal.measures:
            entry["measures"] = sorted(principal.measures)
        entries.append(entry)
    path = home / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": entries}, sort_keys=False))
    return path


def dev_token(home: Path, name: str) -> str:
    return (home / "tokens" / f"{name}.token").read_text().strip()
