"""Subject identifiers outside the core: checked, then replaced by a keyed hash.

Blocklists carry HMAC-SHA256(subject key, normalised ID) instead of the ID, so a leaked
replica names nobody; an authorised subscriber holds the same key and hashes the ID a
customer presents before looking it up.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from pathlib import Path
from typing import Literal

from events.errors import InvalidEvent
from events.identifiers import (
    looks_like_resident_id,
    mask_identifier,
    validate_resident_id,
    validate_uscc,
)
from events.models import PARCEL_CODE, PARCEL_CODE_LENGTH, UNIT_CODE, Site

SUBJECT_KEY_BYTES = 32
SubjectKind = Literal["organization", "person"]

# What a free text may hold that names a person, each standing alone (no letter or digit
# either side, so UUIDs, hashes, offsets and case numbers stay whole):
# - id18: 18 characters of the USCC alphabet (which holds the resident ID's X) with many
#   digits: a resident ID number or a USCC, check character right or not (a typo is still
#   somebody's number);
# - id15: 15 digits, a first-generation resident ID number (GB 11643-1989), still found
#   on old records;
# - a mobile number, 1[3-9] and 9 more digits, maybe written +86 / 0086 / 86 first and
#   grouped 3-4-4;
# - a landline with its area code (0 and 2 or 3 digits, maybe in brackets) and a local
#   number of 7 or 8 digits. Without the area code a local number cannot be told from
#   other numbers, so it is left alone.
_PERSONAL_TOKEN = re.compile(
    r"(?<![0-9A-Z])(?:"
    r"(?P<id18>[0-9A-HJ-NP-RTUW-Y]{18})"
    r"|(?P<id15>[0-9]{15})"
    r"|(?P<mobile_prefix>(?:\+|00)?86[ -]?)?(?P<mobile>1[3-9][0-9](?:[ -]?[0-9]{4}){2})"
    r"|(?P<area>\(?0[1-9][0-9]{1,2}\)?[ -]?)(?P<local>[2-9][0-9]{6,7})"
    r")(?![0-9A-Z])",
    re.IGNORECASE,
)
# A Chinese input method types full-width digits, letters and brackets (１３８…, （0571）):
# they are matched as their ASCII forms, one character for one, so positions hold.
_FULL_WIDTH = str.maketrans({chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)})
_MIN_DIGITS_IN_ID = 8
_MOBILE_SHOWN = (3, 4)  # 138****5678, as Chinese services mask a mobile number
_LANDLINE_SHOWN = 2  # the area code and the last 2 digits: 0571-******21


def mask_identifiers(text: str) -> str:
    """Every ID number and telephone number in `text` masked as notices mask them, so a
    log line and a notice name the same 1101************14 and neither names the person."""
    folded = text.translate(_FULL_WIDTH)
    pieces: list[str] = []
    done = 0
    for match in _PERSONAL_TOKEN.finditer(folded):
        start, end = match.span()
        masked = _mask_token(match)
        # The masked form keeps the token's length; its shown characters are the text's own.
        original = text[start:end]
        pieces += [
            text[done:start],
            "".join(m if m == "*" else o for o, m in zip(original, masked, strict=True)),
        ]
        done = end
    return "".join(pieces) + text[done:] if pieces else text


def _mask_token(match: re.Match[str]) -> str:
    if match["id18"] is not None:
        token = match["id18"]
        digits = sum(char.isdigit() for char in token)
        return mask_identifier(token) if digits >= _MIN_DIGITS_IN_ID else token
    if match["id15"] is not None:
        return mask_identifier(match["id15"])
    if match["mobile"] is not None:
        head, tail = _MOBILE_SHOWN
        return (match["mobile_prefix"] or "") + _mask_digits(match["mobile"], head, tail)
    return match["area"] + _mask_digits(match["local"], 0, _LANDLINE_SHOWN)


def _mask_digits(number: str, head: int, tail: int) -> str:
    """`number` with every digit but the first `head` and last `tail` starred; separators
    kept, so the masked number reads as the number did."""
    total = sum(char.isdigit() for char in number)
    shown: list[str] = []
    seen = 0
    for char in number:
        if char.isdigit():
            shown.append(char if seen < head or seen >= total - tail else "*")
            seen += 1
        else:
            shown.append(char)
    return "".join(shown)


def parse_subject_id(
    raw: str, field: str = "subject"
) -> tuple[Literal["organization", "person"], str]:
    """The kind and normalised form of a USCC or resident ID number, or InvalidEvent why not."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidEvent(field, "required: a USCC or resident ID number")
    value = raw.strip().upper()
    if len(value) != 18:
        raise InvalidEvent(
            field, f"a USCC or resident ID number has 18 characters, got {len(value)}"
        )
    try:
        return "organization", validate_uscc(value)
    except ValueError as as_uscc:
        try:
            return "person", validate_resident_id(value)
        except ValueError as as_person:
            # A USCC's error quotes characters and its expected check character, which for
            # a person's number would disclose what the masked form hides.
            uscc_reason = "" if looks_like_resident_id(value) else f" ({as_uscc})"
            raise InvalidEvent(
                field,
                f"not a valid USCC{uscc_reason} nor resident ID number ({as_person})",
            ) from as_person


MAX_SITE_CHARS = 4000  # a check's `site`: longer is no address


def normalise_location(text: str) -> str:
    """One spelling of a location text: NFKC (full-width digits and letters to ASCII), no
    white space, letters upper-case. Locations match only when written alike; the codes
    are the reliable match."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(folded.split()).upper()


def site_identifiers(site: Site) -> list[str]:
    """What a site-targeted block is held against: its unit code, or else its parcel code
    (the whole parcel), and its location text. Prefixed, so no identifier of one kind
    can equal one of another."""
    found = []
    if site.real_estate_unit is not None:
        found.append(f"site:unit:{site.real_estate_unit}")
    elif site.parcel_code is not None:
        found.append(f"site:parcel:{site.parcel_code}")
    found.append(f"site:location:{normalise_location(site.location)}")
    return found


def query_site_identifiers(raw: str, field: str = "site") -> list[str]:
    """The identifiers a check's `site` matches: a unit code matches its own blocks and
    its parcel's; a parcel code the parcel's; anything else is a location text."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidEvent(field, "required: a real-estate unit code, parcel code or address")
    if len(raw) > MAX_SITE_CHARS:
        raise InvalidEvent(field, f"at most {MAX_SITE_CHARS} characters, got {len(raw)}")
    # Normalised before the codes are recognised: a code typed with a Chinese input method
    # (full-width) or grouped with spaces is still that code, never an unmatched address.
    value = normalise_location(raw)
    if UNIT_CODE.match(value):
        return [f"site:unit:{value}", f"site:parcel:{value[:PARCEL_CODE_LENGTH]}"]
    if PARCEL_CODE.match(value):
        return [f"site:parcel:{value}"]
    return [f"site:location:{value}"]


class SubjectHasher:
    """HMAC-SHA256 of normalised subject IDs under one deployment key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the subject key must have at least 16 bytes")
        self._key = key
        self.key_id = hashlib.sha256(b"redline-subject-key:" + key).hexdigest()[:16]

    def digest(self, normalised_id: str) -> bytes:
        return hmac.digest(self._key, normalised_id.encode("ascii"), "sha256")

    def hash_id(self, normalised_id: str) -> str:
        return self.digest(normalised_id).hex()

    def hash_site(self, identifier: str) -> str:
        """A site identifier (`site_identifiers`), kept apart from subject IDs by its prefix."""
        return hmac.digest(self._key, identifier.encode("utf-8"), "sha256").hex()

    def site_hashes(self, site: Site) -> list[str]:
        return [self.hash_site(identifier) for identifier in site_identifiers(site)]

    def query_site_hashes(self, raw: str) -> list[str]:
        return [self.hash_site(identifier) for identifier in query_site_identifiers(raw)]

    @classmethod
    def from_file(cls, path: Path) -> SubjectHasher:
        """A key file holds the key as hex on one line."""
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except (OSError, ValueError) as exc:
            raise InvalidEvent("subject_key", f"cannot read a hex key from {path}: {exc}") from exc

    @staticmethod
    def create_file(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(SUBJECT_KEY_BYTES) + "\n")
