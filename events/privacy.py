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
from events.identifiers import mask_identifier, validate_resident_id, validate_uscc
from events.models import PARCEL_CODE, PARCEL_CODE_LENGTH, UNIT_CODE, Site

SUBJECT_KEY_BYTES = 32
SubjectKind = Literal["organization", "person"]

# 18 characters of the USCC alphabet (which holds the resident ID's X), standing alone and
# with many digits: a resident ID number or a USCC in free text, check character right or
# not (a typo is still somebody's number). UUIDs, hashes and case numbers never have 18
# such characters between separators.
_ID_TOKEN = re.compile(r"(?<![0-9A-Z])[0-9A-HJ-NP-RTUW-Y]{18}(?![0-9A-Z])", re.IGNORECASE)
_MIN_DIGITS_IN_ID = 8


def mask_identifiers(text: str) -> str:
    """Every ID-shaped token in `text` masked as notices mask an ID, so a log line and a
    notice name the same 1101************14 and neither names the person."""

    def mask(match: re.Match[str]) -> str:
        token = match.group(0)
        digits = sum(char.isdigit() for char in token)
        return mask_identifier(token) if digits >= _MIN_DIGITS_IN_ID else token

    return _ID_TOKEN.sub(mask, text)


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
            raise InvalidEvent(
                field,
                f"not a valid USCC ({as_uscc}) nor resident ID number ({as_person})",
            ) from as_person


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
    if len(raw) > 4000:
        raise InvalidEvent(field, f"at most 4000 characters, got {len(raw)}")
    value = raw.strip().upper()
    if UNIT_CODE.match(value):
        return [f"site:unit:{value}", f"site:parcel:{value[:PARCEL_CODE_LENGTH]}"]
    if PARCEL_CODE.match(value):
        return [f"site:parcel:{value}"]
    return [f"site:location:{normalise_location(raw)}"]


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
