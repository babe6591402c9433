"""Ed25519 signatures and the trust store that says which key may issue which event type.

A department acts on an event by blocking a citizen or a company, so it must know the
event comes from the authority entitled to issue that type, unchanged.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any

import rfc8785
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from events.envelope import Envelope, canonical_bytes
from events.errors import EventError, SignatureRejected

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def _b64decode(value: str, expected_length: int) -> bytes:
    decoded = base64.b64decode(value, validate=True)
    if len(decoded) != expected_length:
        raise ValueError(f"expected {expected_length} bytes, got {len(decoded)}")
    return decoded


class Signer:
    """An issuing authority's private key, named by the key id consumers look it up by.

    Its PEM file is read and written with `cryptography`; it signs with libsodium (the
    same deterministic Ed25519 signature, in two thirds of the time)."""

    def __init__(self, key_id: str, private_key: Ed25519PrivateKey) -> None:
        if not key_id:
            raise EventError("a signing key needs a non-empty key id")
        self.key_id = key_id
        self._private_key = private_key
        self._signing_key = SigningKey(
            private_key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )

    @classmethod
    def generate(cls, key_id: str) -> Signer:
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, key_id: str, pem: bytes | str) -> Signer:
        data = pem.encode() if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise EventError(f"key {key_id!r}: not an unencrypted PEM private key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise EventError(f"key {key_id!r}: not an Ed25519 key")
        return cls(key_id, key)

    def private_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted: protect the file, not the bytes."""
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_key_b64(self) -> str:
        """The raw 32-byte public key in base64, as the trust store holds it."""
        raw = self._private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode("ascii")

    def sign_bytes(self, message: bytes) -> bytes:
        return self._signing_key.sign(message).signature


def sign(envelope: Envelope, signer: Signer) -> Envelope:
    """Return a copy carrying `signingkey` and a signature over its canonical bytes."""
    keyed = envelope.model_copy(update={"signingkey": signer.key_id, "signature": None})
    signature = signer.sign_bytes(canonical_bytes(keyed))
    return keyed.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})


@dataclass(frozen=True)
class TrustedKey:
    """A public key, who holds it, the source it must sign as, and the types it may issue."""

    key_id: str
    issuer: str
    source: str
    public_key_b64: str
    may_issue: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            _b64decode(self.public_key_b64, PUBLIC_KEY_BYTES)
        except (binascii.Error, ValueError) as exc:
            raise EventError(f"key {self.key_id!r}: public_key: not a raw Ed25519 key") from exc

    def allows(self, event_type: str) -> bool:
        """fnmatch patterns, e.g. "redline.case.*"; case-sensitive on every platform."""
        return any(fnmatchcase(event_type, pattern) for pattern in self.may_issue)

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of `message` (one of the
        wrong length is not: libsodium raises ValueError for it)."""
        try:
            _verify_key(self.public_key_b64).verify(message, signature)
        except (BadSignatureError, ValueError):
            return False
        return True


@lru_cache(maxsize=1024)
def _verify_key(public_key_b64: str) -> VerifyKey:
    """Parsed once per key, not once per event verified (immutable, so safe to share).
    libsodium, not OpenSSL: 46 us a verification here instead of 111 us."""
    return VerifyKey(_b64decode(public_key_b64, PUBLIC_KEY_BYTES))


_ENTRY_FIELDS = ("key_id", "issuer", "source", "public_key", "may_issue")


def _entry_error(path: Path, index: int, key_id: object, field: str, reason: str) -> EventError:
    name = f"keys[{index}]" + (f" ({key_id})" if isinstance(key_id, str) and key_id else "")
    return EventError(f"{path}: {name}.{field}: {reason}")


def _parse_entry(path: Path, index: int, entry: object) -> TrustedKey:
    if not isinstance(entry, dict):
        raise _entry_error(path, index, None, "*", "must be a mapping")
    key_id = entry.get("key_id")
    extras = sorted(str(name) for name in set(entry) - set(_ENTRY_FIELDS))
    if extras:
        raise _entry_error(path, index, key_id, extras[0], "unknown field")
    for name in _ENTRY_FIELDS[:4]:
        value = entry.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _entry_error(path, index, key_id, name, "must be a non-empty string")
    patterns = entry.get("may_issue")
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise _entry_error(path, index, key_id, "may_issue", "must be a non-empty list of strings")
    try:
        return TrustedKey(
            key_id=entry["key_id"],
            issuer=entry["issuer"],
            source=entry["source"],
            public_key_b64=entry["public_key"],
            may_issue=tuple(patterns),
        )
    except EventError as exc:
        raise _entry_error(path, index, key_id, "public_key", "not a raw Ed25519 key") from exc


class TrustStore:
    """The keys a consumer trusts; anything signed otherwise is rejected."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self._keys: dict[str, TrustedKey] = {}
        for key in keys:
            if key.key_id in self._keys:
                raise EventError(f"key {key.key_id!r} appears twice in the trust store")
            self._keys[key.key_id] = key

    @property
    def keys(self) -> tuple[TrustedKey, ...]:
        return tuple(self._keys.values())

    def get(self, key_id: str) -> TrustedKey | None:
        return self._keys.get(key_id)

    @classmethod
    def load(cls, path: Path | str) -> TrustStore:
        """Read `{keys: [{key_id, issuer, source, public_key, may_issue}]}` strictly."""
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise EventError(f"{path}: cannot read trust store: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise EventError(f"{path}: keys: must be a list of key entries")
        entries = [_parse_entry(path, i, e) for i, e in enumerate(document["keys"])]
        seen: set[str] = set()
        for index, key in enumerate(entries):
            if key.key_id in seen:
                raise _entry_error(path, index, key.key_id, "key_id", "duplicate key id")
            seen.add(key.key_id)
        return cls(entries)

    def dump(self, path: Path | str) -> None:
        document: dict[str, Any] = {
            "keys": [
                {
                    "key_id": k.key_id,
                    "issuer": k.issuer,
                    "source": k.source,
                    "public_key": k.public_key_b64,
                    "may_issue": list(k.may_issue),
                }
                for k in self._keys.values()
            ]
        }
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
        Path(path).write_text(text, encoding="utf-8")

    def verify(self, envelope: Envelope) -> TrustedKey:
        """Prove who sent the event as sent, then that they may send it from that source."""
        if not envelope.signingkey or not envelope.signature:
            raise SignatureRejected("malformed", "the event has no signingkey or signature")
        try:
            signature = _b64decode(envelope.signature, SIGNATURE_BYTES)
        except (binascii.Error, ValueError) as exc:
            raise SignatureRejected("malformed", f"signature: {exc}") from exc
        key = self._keys.get(envelope.signingkey)
        if key is None:
            raise SignatureRejected("unknown_key", f"no trusted key {envelope.signingkey!r}")
        try:
            message = canonical_bytes(envelope)
        except (rfc8785.CanonicalizationError, ValueError, RecursionError) as exc:
            raise SignatureRejected("malformed", f"cannot canonicalise: {exc}") from exc
        if not key.verifies(signature, message):
            raise SignatureRejected("bad_signature", f"signature does not match key {key.key_id!r}")
        if envelope.source != key.source:
            raise SignatureRejected(
                "source_mismatch",
                f"key {key.key_id!r} signs as {key.source!r}, event says {envelope.source!r}",
            )
        if not key.allows(envelope.type):
            raise SignatureRejected(
                "issuer_not_allowed", f"{key.issuer} may not issue {envelope.type}"
            )
        return key
