"""Subject IDs at the point of transaction: validated and hashed in about a microsecond.

A check runs on every supply contract or loan application, so this is the hot path. The
rules are exactly those of `events.identifiers` (a test holds them equal); only the
arithmetic is rearranged so that C code does the loops:

* USCC weights are 3^i mod 31, so the weighted sum mod 31 is the value of the reversed
  17 characters read as a base-34 number (34 ≡ 3 mod 31), which `int(..., 34)` computes.
* Resident-ID weights are 2^(17-i) mod 11, so the sum is twice the first 17 digits read in
  base 13 (13 ≡ 2 mod 11). The birth date is looked up in a set of real past dates.
* HMAC-SHA256 reuses precomputed inner and outer SHA-256 states (`.copy()`), about four
  times faster than `hmac.digest` for one short message.

Anything the fast path cannot vouch for goes to `events.privacy.parse_subject_id`, which
accepts or refuses it and says exactly why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from connectors.subscriber.errors import ConfigError, InvalidInput
from events.errors import InvalidEvent
from events.identifiers import (
    RESIDENT_ID_CHECKS,
    RESIDENT_ID_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
)
from events.privacy import SubjectHasher, parse_subject_id
from events.subject_keys import read_measure_keys

_LENGTH = 18
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INVALID = ord("#")  # not a digit in any base: int() refuses it

if [pow(3, i, 31) for i in range(17)] != list(USCC_WEIGHTS):  # pragma: no cover
    raise ImportError("USCC weights are no longer powers of 3 mod 31")
if [pow(2, 17 - i, 11) for i in range(17)] != list(RESIDENT_ID_WEIGHTS):  # pragma: no cover
    raise ImportError("resident ID weights are no longer powers of 2 mod 11")


def _table(mapping: dict[str, str]) -> bytes:
    """A bytes.translate table: listed ASCII characters map as given, all others to '#'."""
    table = bytearray([_INVALID]) * 256
    for source, target in mapping.items():
        table[ord(source)] = ord(target)
    return bytes(table)


# USCC character -> its index in the USCC alphabet, written as a base-34 digit.
_USCC_DIGITS = _table({c: _BASE36[i] for i, c in enumerate(USCC_ALPHABET)})
_USCC_VALUE = [-1] * 256
for _i, _c in enumerate(USCC_ALPHABET):
    _USCC_VALUE[ord(_c)] = _i
# Check character -> the residue mod 31 the weighted body sum must have for it to fit
# (-1 for a byte that is no USCC character): one comparison instead of three on the hot path.
_USCC_RESIDUE = [-1] * 256
for _i, _c in enumerate(USCC_ALPHABET):
    _USCC_RESIDUE[ord(_c)] = -_i % 31
_DECIMAL = _table({c: c for c in "0123456789"})
_RESIDENT_CHECK = tuple(ord(c) for c in RESIDENT_ID_CHECKS)
_FIRST_FAST_BIRTH_YEAR = 1900


def _past_dates(first_year: int, today: date) -> frozenset[bytes]:
    """Every real date from 1 January `first_year` to `today`, as ASCII YYYYMMDD."""
    day, one = date(first_year, 1, 1), timedelta(days=1)
    dates: list[bytes] = []
    while day <= today:
        dates.append(day.strftime("%Y%m%d").encode("ascii"))
        day += one
    return frozenset(dates)


def _ascii_upper(raw: object) -> bytes:
    """The ID as upper-case ASCII bytes, or b"" for anything else (the reference decides)."""
    try:
        return raw.encode("ascii").upper() if isinstance(raw, str) else b""
    except UnicodeEncodeError:
        return b""


def _uscc_valid(code: bytes) -> bool:
    """Exactly `validate_uscc` for 18 upper-case ASCII bytes."""
    try:
        total = int(code.translate(_USCC_DIGITS)[16::-1], 34)
    except ValueError:
        return False
    check = _USCC_VALUE[code[17]]
    return check >= 0 and (total + check) % 31 == 0


class SubjectIds:
    """Validates raw subject IDs and hashes them under the deployment's subject key."""

    def __init__(self, key: bytes, *, today: date | None = None) -> None:
        try:
            hasher = SubjectHasher(key)  # the reference: same key checks, same key id
        except ValueError as exc:
            raise ConfigError("subject_key", str(exc)) from exc
        self.key_id = hasher.key_id
        self.hasher = hasher
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        # Dates before 1900, or after the day this was built, take the reference path.
        self._birth_dates = _past_dates(_FIRST_FAST_BIRTH_YEAR, today or date.today())
        self.digest_of: Callable[[str], bytes] = self._digest_function()
        """Validate, normalise and hash a raw ID in one call: the whole CPU work of a
        check. Raises InvalidInput naming `subject` and the reason."""

    @classmethod
    def from_file(cls, path: Path) -> SubjectIds:
        """The key file `SubjectHasher.create_file` writes: the key as hex on one line."""
        try:
            return cls(bytes.fromhex(path.read_text(encoding="ascii").strip()))
        except (OSError, ValueError) as exc:
            raise ConfigError("subject_key", f"cannot read a hex key from {path}: {exc}") from exc

    @classmethod
    def for_measures(cls, path: Path, measures: tuple[str, ...]) -> dict[str, SubjectIds]:
        """Each measure's own key from a subscriber's key file (events.subject_keys): one
        `<measure> <hex>` line per measure, or one bare master key to derive them from."""
        try:
            keys = read_measure_keys(path, measures)
        except (OSError, ValueError) as exc:
            raise ConfigError("subject_key", f"cannot read the keys from {path}: {exc}") from exc
        return {measure: cls(key) for measure, key in keys.items()}

    def digest(self, normalised_id: str) -> bytes:
        """HMAC-SHA256(key, id): equal to `SubjectHasher.digest`, from precomputed states."""
        inner = self._inner.copy()
        inner.update(normalised_id.encode("ascii"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def site_hashes(self, raw: str) -> frozenset[str]:
        """The keyed hashes a check's `site` matches (a unit code also matches its parcel),
        or InvalidInput naming `site` and what is wrong with it. Only a subject on a list
        held against sites pays for this, never a clear check."""
        try:
            return frozenset(self.hasher.query_site_hashes(raw))
        except InvalidEvent as exc:
            raise InvalidInput("site", exc.reason) from exc

    def normalise(self, raw: str) -> str:
        """The normalised ID, or InvalidInput naming `subject` and what is wrong with it."""
        code = _ascii_upper(raw)
        if len(code) == _LENGTH and (_uscc_valid(code) or self._resident_valid(code)):
            return code.decode("ascii")
        return self._reference(raw)

    def _digest_function(self) -> Callable[[str], bytes]:
        """`normalise` then `digest`, inlined into one closure: on this path each Python
        call, attribute or global lookup costs a few percent of the total."""
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        resident_valid, fallback = self._resident_valid, self._fallback_digest
        uscc_digits, uscc_residue, length = _USCC_DIGITS, _USCC_RESIDUE, _LENGTH

        def digest_of(raw: str) -> bytes:
            try:
                code = raw.encode("ascii").upper()
            except (AttributeError, UnicodeEncodeError):
                return fallback(raw)
            if len(code) != length:
                return fallback(raw)
            try:
                uscc = int(code.translate(uscc_digits)[16::-1], 34) % 31 == uscc_residue[code[17]]
            except ValueError:
                uscc = False
            if uscc or resident_valid(code):
                inner = inner_copy()
                inner.update(code)
                outer = outer_copy()
                outer.update(inner.digest())
                return outer.digest()
            return fallback(raw)

        return digest_of

    def _fallback_digest(self, raw: str) -> bytes:
        return self.digest(self._reference(raw))

    def _resident_valid(self, code: bytes) -> bool:
        """True only for a resident ID the reference accepts (born 1900 or later, not
        after this object was made); False means "ask the reference"."""
        try:
            total = int(code[:17].translate(_DECIMAL), 13) * 2
        except ValueError:
            return False
        return code[17] == _RESIDENT_CHECK[total % 11] and code[6:14] in self._birth_dates

    @staticmethod
    def _reference(raw: str) -> str:
        try:
            return parse_subject_id(raw, field="subject")[1]
        except InvalidEvent as exc:
            raise InvalidInput(exc.field, exc.reason) from exc
