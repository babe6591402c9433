"""Signing keys and a trust store for the embedded system, made once under REDLINE_HOME.

Production deployments provide their own trust store (REDLINE_TRUST_STORE) and each
authority keeps its private key; these development keys exist so `make run` works alone.
"""

from __future__ import annotations

from pathlib import Path

from events.authorities import Authority, all_authorities
from events.catalogue import load_catalogue
from events.privacy import SubjectHasher
from events.signing import Signer, TrustedKey, TrustStore
from services.access import ensure_dev_tokens


def key_id(authority: Authority) -> str:
    return f"{authority.code}-dev"


def ensure_dev_keys(home: Path, authorities: tuple[Authority, ...] | None = None) -> Path:
    """Create any missing private key and (re)write the trust store; returns its path."""
    keys_dir = home / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    trusted: list[TrustedKey] = []
    for authority in authorities or all_authorities():
        signer = load_dev_signer(home, authority)
        trusted.append(
            TrustedKey(
                key_id=signer.key_id,
                issuer=authority.code,
                source=authority.source,
                public_key_b64=signer.public_key_b64(),
                may_issue=authority.may_issue,
            )
        )
    path = home / "truststore.yaml"
    TrustStore(trusted).dump(path)
    if not (keys_dir / "subject.key").exists():
        SubjectHasher.create_file(keys_dir / "subject.key")
    ensure_dev_tokens(home, load_catalogue().bodies)
    return path


def load_dev_signer(home: Path, authority: Authority) -> Signer:
    """The authority's development signer, generated on first use."""
    pem_path = home / "keys" / f"{key_id(authority)}.pem"
    if pem_path.exists():
        return Signer.from_pem(key_id(authority), pem_path.read_bytes())
    signer = Signer.generate(key_id(authority))
    pem_path.parent.mkdir(parents=True, exist_ok=True)
    pem_path.touch(mode=0o600)
    pem_path.write_bytes(signer.private_pem())
    return signer
