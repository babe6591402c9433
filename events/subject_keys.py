"""One subject key per blocklist measure, derived from the builder's master key.

A single key for every list meant that one leaked replica and its key let anyone confirm
a guessed ID on every list (water, power, gas, loans). Each list's hashes are instead
made under HKDF-SHA256(master, info="redline-subject-key:<measure>") (RFC 5869, as TLS 1.3
and Signal derive per-purpose keys): a subscriber is given only the keys of the measures
it serves, and a hash under one measure's key says nothing about another list, since
HMAC keys derived with different `info` are independent to anyone without the master.

A subscriber's key file holds one `<measure> <hex key>` line per measure; a file of one
bare hex key is a master key (development, or a single trusted party), from which the
keys are derived on the spot.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from events.privacy import SubjectHasher

DERIVED_KEY_BYTES = 32
_SALT = b"redline-blocklist-subject-keys-v1"


def derive_measure_key(master: bytes, measure: str) -> bytes:
    """The subject key of one measure's list."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=DERIVED_KEY_BYTES,
        salt=_SALT,
        info=f"redline-subject-key:{measure}".encode(),
    ).derive(master)


def measure_hashers(master: bytes, measures: Iterable[str]) -> dict[str, SubjectHasher]:
    """A hasher per measure, each under that measure's derived key."""
    return {measure: SubjectHasher(derive_measure_key(master, measure)) for measure in measures}


def read_measure_keys(path: Path, measures: Iterable[str]) -> dict[str, bytes]:
    """The keys of `measures` from a subscriber's key file; ValueError names what is
    missing or malformed. A bare hex key is a master key: the keys are derived from it."""
    text = path.read_text(encoding="ascii").strip()
    wanted = tuple(measures)
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0]) == 1:
        master = bytes.fromhex(lines[0][0])
        return {measure: derive_measure_key(master, measure) for measure in wanted}
    keys: dict[str, bytes] = {}
    for number, parts in enumerate(lines, start=1):
        if len(parts) != 2:
            raise ValueError(f"line {number}: expected '<measure> <hex key>'")
        keys[parts[0]] = bytes.fromhex(parts[1])
    missing = [measure for measure in wanted if measure not in keys]
    if missing:
        raise ValueError(f"no key for measure {missing[0]!r} in {path}")
    return {measure: keys[measure] for measure in wanted}


def write_measure_keys(path: Path, master: bytes, measures: Iterable[str]) -> None:
    """Provision a subscriber: the derived keys of its measures only, never the master."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        "".join(f"{m} {derive_measure_key(master, m).hex()}\n" for m in measures),
        encoding="ascii",
    )
