"""Who may call the check API: bearer tokens kept only as SHA-256 hashes, and a token
bucket per token on checks, so a stolen or runaway client cannot sweep the ID space.

The tokens file has the registry's layout (services/access.py), without roles: every
token may check every measure this connector serves.

    tokens:
      - name: billing            # who it is, for the rate limit and the operator
        sha256: 9f86d081...      # hex SHA-256 of the raw token; the token itself is kept nowhere

A request's token is hashed once and compared with every stored hash in constant time, with
no early exit and no I/O, so a check stays cheap and its timing says nothing about the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.subscriber.errors import ConfigError

ANONYMOUS = "anonymous"  # the one rate-limit bucket when authentication is off
DEFAULT_CHECK_RATE = 100.0  # checks a second per token, on average
DEFAULT_CHECK_BURST = 200  # checks at once per token
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ENTRY_FIELDS = frozenset({"name", "sha256"})


def token_hash(token: str) -> str:
    """The hex SHA-256 a tokens file holds for `token`."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenSet:
    """The hashes of the tokens allowed in, each with the name it is known by."""

    def __init__(self, tokens: Iterable[tuple[str, str]]) -> None:
        self._tokens = tuple((name, bytes.fromhex(digest)) for name, digest in tokens)
        if not self._tokens:
            raise ConfigError("api_tokens", "the tokens file lists no token")

    def __len__(self) -> int:
        return len(self._tokens)

    def who(self, token: str) -> str | None:
        """The name of `token`, or None. Every stored hash is compared, in constant time."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for name, stored in self._tokens:
            if hmac.compare_digest(digest, stored):
                found = name
        return found

    @classmethod
    def load(cls, path: Path) -> TokenSet:
        """Read a tokens file, refused naming the entry and the field that is wrong."""
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError("api_tokens", f"cannot read {path}: {exc}") from None
        if not isinstance(document, dict) or not isinstance(document.get("tokens"), list):
            raise ConfigError("api_tokens", f"{path}: expected a mapping with a 'tokens' list")
        return cls(_entries(document["tokens"], path))


def _entries(entries: list[Any], path: Path) -> list[tuple[str, str]]:
    names: set[str] = set()
    hashes: set[str] = set()
    tokens = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: token {number}"
        if not isinstance(entry, dict):
            raise ConfigError("api_tokens", f"{where}: expected a mapping of name and sha256")
        unknown = sorted(set(map(str, entry)) - _ENTRY_FIELDS)
        if unknown:
            raise ConfigError(
                "api_tokens",
                f"{where}: unknown field(s) {', '.join(unknown)}: an entry has only name "
                "and sha256 (every token may check every measure served)",
            )
        name, digest = entry.get("name"), entry.get("sha256")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError("api_tokens", f"{where}: name: required, a non-empty string")
        if not isinstance(digest, str) or not _HEX_SHA256.fullmatch(digest.lower()):
            raise ConfigError(
                "api_tokens", f"{where} ({name}): sha256: must be 64 hex digits (the token's hash)"
            )
        digest = digest.lower()
        if name in names or digest in hashes:
            raise ConfigError("api_tokens", f"{where} ({name}): the name or the hash is repeated")
        names.add(name)
        hashes.add(digest)
        tokens.append((name, digest))
    return tokens


class RateLimiter:
    """A token bucket per name: `rate` requests a second on average, `burst` at once.

    In process and keyed by token name, so its memory is bounded by the tokens file."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ConfigError("check_rate", f"must be a number of checks a second > 0, got {rate}")
        if burst < 1:
            raise ConfigError("check_burst", f"must be at least 1, got {burst}")
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)

    def take(self, name: str) -> float | None:
        """Spend one of `name`'s tokens: None when there was one, else the seconds until
        there will be (for Retry-After)."""
        now = self.clock()
        tokens, at = self._buckets.get(name, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[name] = (tokens - 1.0, now)
            return None
        self._buckets[name] = (tokens, now)
        return (1.0 - tokens) / self.rate


@dataclass(frozen=True)
class Refusal:
    """Why a request is not served: 401 (who are you) or 429 (not so fast)."""

    status: int
    reason: str
    retry_after: int | None = None


@dataclass(frozen=True)
class Access:
    """The API's gate: `tokens` None means no authentication (a loopback demo only)."""

    tokens: TokenSet | None
    limiter: RateLimiter | None

    @classmethod
    def open(cls, limiter: RateLimiter | None = None) -> Access:
        return cls(None, limiter)

    def caller(self, headers: Iterable[tuple[bytes, bytes]]) -> str | Refusal:
        """The caller's token name (ANONYMOUS when authentication is off), or a 401."""
        if self.tokens is None:
            return ANONYMOUS
        values = [value for name, value in headers if name == b"authorization"]
        if not values:
            return Refusal(401, "a bearer token is required: Authorization: Bearer <token>")
        if len(values) > 1:
            return Refusal(401, "the Authorization header is given more than once")
        scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Refusal(401, "the Authorization header must be 'Bearer <token>'")
        name = self.tokens.who(token)
        if name is None:
            return Refusal(401, "the bearer token is not known")
        return name

    def spend(self, name: str) -> Refusal | None:
        """One check of `name`, or a 429 saying when to come back."""
        if self.limiter is None:
            return None
        wait = self.limiter.take(name)
        if wait is None:
            return None
        return Refusal(
            429,
            f"too many checks for token {name}: at most {self.limiter.burst:g} at once and "
            f"{self.limiter.rate:g} a second",
            max(1, math.ceil(wait)),
        )


def is_loopback(host: str) -> bool:
    """Whether `host` listens only on this machine (so --no-auth can do no harm there)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_dev_tokens(directory: Path, name: str = "demo") -> Path:
    """A development tokens file for `make run` and the tests: the raw token in
    directory/api.token (kept across runs, mode 0600), its hash in directory/api-tokens.yaml."""
    directory.mkdir(parents=True, exist_ok=True)
    raw = directory / "api.token"
    if not raw.exists():
        raw.touch(mode=0o600)
        raw.write_text(secrets.token_urlsafe(32) + "\n")
    path = directory / "api-tokens.yaml"
    entry = {"name": name, "sha256": token_hash(raw.read_text().strip())}
    path.write_text(yaml.safe_dump({"tokens": [entry]}, sort_keys=False))
    return path
